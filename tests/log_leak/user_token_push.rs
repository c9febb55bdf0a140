//! Captures every `tracing` event (all crates, TRACE) while the sandbox sends the sign-in
//! activities of a followed link (`signin/verifyState`, `tokens/response`) to a bot: no magic
//! code, user token, sign-in link or `state` may appear.

use std::net::{Ipv4Addr, SocketAddr};

use botauth_e2e::{CapturedLogs, jwt_and_parts};
use botauth_sandbox::{ChatTarget, DEMO_CLIENT_ID, DEMO_CONVERSATION_ID, DEMO_USER_ID, Sandbox};
use botauth_sso_bot::{MESSAGES_PATH, SsoBot};

#[path = "../support/sign_in.rs"]
mod sign_in;
use sign_in::{CONNECTION, config, reference, sign_in_link};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_code_token_link_or_state_of_a_pushed_sign_in_reaches_the_logs() {
    let logs = CapturedLogs::scenario().await;
    let sandbox = Sandbox::start().await.expect("log-leak run");
    sandbox.register_oauth_connection(CONNECTION);
    let bot = SsoBot::from_config(config(&sandbox), CONNECTION, None).expect("log-leak run");
    let addr = bot
        .spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("log-leak run");
    let url = format!("http://{addr}{MESSAGES_PATH}");
    sandbox
        .push_sign_ins_to(Some(ChatTarget::new(url.as_str(), DEMO_CLIENT_ID)))
        .expect("log-leak run");

    let mut forbidden = Vec::new();
    for (channel, user, conversation) in [
        ("msteams", DEMO_USER_ID, DEMO_CONVERSATION_ID),
        ("webchat", "dl_user-1", "webchat-conversation-1"),
    ] {
        let link = sign_in_link(&sandbox, reference(channel, user, conversation, &sandbox)).await;
        let code = sandbox
            .follow_sign_in_link(&link)
            .await
            .expect("log-leak run");
        assert_eq!(code.len(), 6);
        forbidden.push(link.split_once('?').expect("log-leak run").1.to_owned());
        forbidden.push(link);
        forbidden.push(format!("\"state\":\"{code}\""));
        forbidden.push(format!("state={code}"));
        forbidden.push(format!("code={code}"));
    }
    let pushes = sandbox.sign_in_pushes();
    assert_eq!(
        pushes
            .iter()
            .map(|p| (p.name, p.outcome.as_ref().map(|d| d.status)))
            .collect::<Vec<_>>(),
        [
            ("signin/verifyState", Ok(200)),
            ("tokens/response", Ok(200))
        ]
    );
    for token in sandbox.issued_user_tokens() {
        forbidden.extend(jwt_and_parts(&token));
    }
    forbidden.extend(sandbox.received_sign_in_states());
    logs.assert_clean(
        &["botauth sandbox sent a sign-in activity to the bot"],
        &forbidden,
    );
}
