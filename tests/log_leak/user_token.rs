//! Captures every `tracing` event (all crates, TRACE) of a full user sign-in — OAuth card, magic
//! code, verifyState, Teams SSO exchange and its duplicate, consent required, sign-out — and
//! fails if a user token, a magic code, a `state`, a sign-in link, a SAS URL, an SSO token or an
//! exchange body appears in it.

use std::net::{Ipv4Addr, SocketAddr};

use botauth_e2e::{CapturedLogs, jwt_and_parts, sign_in_config};
use botauth_sandbox::{DEMO_CLIENT_ID, Sandbox};
use botauth_sso_bot::{MESSAGES_PATH, SsoBot};
use serde_json::Value;

const CONNECTION: &str = "graph";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_user_token_code_state_link_or_sso_token_reaches_the_logs() {
    let logs = CapturedLogs::scenario().await;
    let sandbox = Sandbox::start().await.expect("log-leak run");
    sandbox.register_oauth_connection(CONNECTION);
    let config = sign_in_config(&sandbox);
    let bot = SsoBot::from_config(config, CONNECTION, None).expect("log-leak run");
    tracing::info!(?bot, "bot built");
    let addr = bot
        .spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .expect("log-leak run");
    let url = format!("http://{addr}{MESSAGES_PATH}");
    let deliver = |activity: Value| {
        let sandbox = &sandbox;
        let url = url.clone();
        async move {
            let token = sandbox.channel_token(DEMO_CLIENT_ID, &activity);
            sandbox
                .deliver_activity(&url, &activity, Some(&token))
                .await
                .expect("log-leak run")
        }
    };
    let message = |text: &str| sandbox.channel_activity(DEMO_CLIENT_ID, text);
    let last = || {
        sandbox
            .connector_posts()
            .last()
            .map(|post| post.activity.clone())
            .expect("log-leak run")
    };

    let mut forbidden: Vec<String> = Vec::new();
    let card = |forbidden: &mut Vec<String>| {
        let card = last();
        let content = card["attachments"][0]["content"].clone();
        let link = content["buttons"][0]["value"]
            .as_str()
            .expect("log-leak run")
            .to_owned();
        let sas = content["tokenPostResource"]["sasUrl"]
            .as_str()
            .expect("log-leak run")
            .to_owned();
        forbidden.push(link.clone());
        forbidden.push(link.split_once('?').expect("log-leak run").1.to_owned());
        forbidden.push(sas);
        (
            link,
            content["tokenExchangeResource"]["id"]
                .as_str()
                .expect("log-leak run")
                .to_owned(),
        )
    };

    // Magic code in text.
    deliver(message("whoami")).await;
    let (link, _) = card(&mut forbidden);
    let code = sandbox
        .follow_sign_in_link(&link)
        .await
        .expect("log-leak run");
    forbidden.push(code.clone());
    deliver(message(&code)).await;
    deliver(message("whoami")).await;
    deliver(message("logout")).await;

    // signin/verifyState with a code, then a refused one.
    deliver(message("whoami")).await;
    let (link, id) = card(&mut forbidden);
    let code = sandbox
        .follow_sign_in_link(&link)
        .await
        .expect("log-leak run");
    forbidden.push(code.clone());
    assert_eq!(
        deliver(sandbox.verify_state_invoke(DEMO_CLIENT_ID, &code))
            .await
            .status,
        200
    );
    assert_eq!(
        deliver(sandbox.verify_state_invoke(DEMO_CLIENT_ID, "000000"))
            .await
            .status,
        404
    );
    deliver(message("logout")).await;

    // Teams SSO: exchange, duplicate, consent required.
    let mut sso_invoke = || {
        let invoke = sandbox.token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, &id);
        let sso = invoke["value"]["token"]
            .as_str()
            .expect("log-leak run")
            .to_owned();
        forbidden.extend(jwt_and_parts(&sso));
        forbidden.push(format!("{{\"token\":\"{sso}\"}}"));
        invoke
    };
    let (first, second) = (sso_invoke(), sso_invoke());
    sandbox.set_consent_required(true);
    let third = sso_invoke();
    assert_eq!(deliver(third).await.status, 412);
    sandbox.set_consent_required(false);
    assert_eq!(deliver(first).await.status, 200);
    assert_eq!(deliver(second).await.status, 200);
    deliver(message("logout")).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;

    for token in sandbox.issued_user_tokens() {
        forbidden.extend(jwt_and_parts(&token));
    }
    forbidden.extend(sandbox.received_sign_in_states());
    assert!(sandbox.issued_user_tokens().len() >= 3);
    assert!(sandbox.received_sign_in_states().len() >= 2);
    drop(sandbox);

    let text = logs.whole_capture();
    logs.assert_clean(&["Token Service answered"], &forbidden);
    // Magic codes are six digits, which could appear by chance inside other numbers: they are
    // checked as whole words.
    for code in forbidden
        .iter()
        .filter(|f| f.len() == 6 && f.bytes().all(|b| b.is_ascii_digit()))
    {
        let whole = text
            .split(|c: char| !c.is_ascii_digit())
            .any(|word| word == code);
        assert!(!whole, "a magic code leaked into the logs: {code}");
    }
}
