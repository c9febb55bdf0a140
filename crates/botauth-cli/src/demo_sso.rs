//! `botauth demo --sso`: user sign-in end to end against an in-process sandbox playing Teams, the
//! Bot Service, the Bot Connector and the Token Service. A small axum bot answers "whoami" by
//! signing the user in (OAuth card, magic code, Teams SSO) and reading the user token's claims: the
//! example bot of `examples/sso-bot`.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use botauth::BotAuthConfig;
use botauth_sandbox::{
    ChatTarget, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Delivery, Sandbox,
};
use botauth_sso_bot::{MESSAGES_PATH, SsoBot};
use serde_json::{Value, json};

use crate::demo::DemoError;

/// The OAuth connection the demo registers and the bot uses.
const CONNECTION: &str = "graph";

fn check(ok: bool, what: impl Into<String>) -> Result<(), DemoError> {
    if ok {
        Ok(())
    } else {
        Err(DemoError::Check(what.into()))
    }
}

struct Demo {
    sandbox: Sandbox,
    url: String,
}

impl Demo {
    async fn deliver(&self, activity: &Value) -> Result<Delivery, DemoError> {
        let token = self.sandbox.channel_token(DEMO_CLIENT_ID, activity);
        self.sandbox
            .deliver_activity(&self.url, activity, Some(&token))
            .await
            .map_err(|e| DemoError::Check(format!("the bot cannot be reached: {e}")))
    }

    async fn say(&self, text: &str) -> Result<Value, DemoError> {
        let before = self.sandbox.connector_posts().len();
        let delivery = self
            .deliver(&self.sandbox.channel_activity(DEMO_CLIENT_ID, text))
            .await?;
        check(
            delivery.status == 200,
            format!("the bot answered HTTP {} to a message", delivery.status),
        )?;
        let posts = self.sandbox.connector_posts();
        check(posts.len() == before + 1, "the bot sent no reply")?;
        Ok(posts[before].activity.clone())
    }

    /// "whoami" while signed out: the OAuth card; returns the link and the SSO resource id.
    async fn card(&self) -> Result<(String, String), DemoError> {
        let reply = self.say("whoami").await?;
        let card = &reply["attachments"][0];
        check(
            card["contentType"] == "application/vnd.microsoft.card.oauth",
            format!(
                "expected an OAuth card, got {}",
                reply.get("text").unwrap_or(&Value::Null)
            ),
        )?;
        let link = card["content"]["buttons"][0]["value"]
            .as_str()
            .unwrap_or_default();
        let id = card["content"]["tokenExchangeResource"]["id"]
            .as_str()
            .unwrap_or_default();
        check(
            !link.is_empty() && !id.is_empty(),
            "the card has no link or no tokenExchangeResource",
        )?;
        Ok((link.to_owned(), id.to_owned()))
    }
}

pub(crate) async fn demo() -> Result<(), DemoError> {
    let sandbox = Sandbox::start()
        .await
        .map_err(|e| DemoError::Check(format!("cannot start the sandbox: {e}")))?;
    sandbox.register_oauth_connection(CONNECTION);
    println!("botauth demo --sso: a user signs in to a Teams bot, against the local sandbox");
    println!(
        "  sandbox at {}; OAuth connection '{CONNECTION}'",
        sandbox.url()
    );

    let mut config = BotAuthConfig::from_vars([
        ("CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
        ("CLIENT_SECRET", DEMO_CLIENT_SECRET.to_owned()),
        ("TENANT_ID", DEMO_TENANT_ID.to_owned()),
        ("BOTAUTH_AUTHORITY_HOST", sandbox.url()),
        ("BOTAUTH_METADATA_URL", sandbox.bot_service_metadata_url()),
        ("BOTAUTH_ALLOWED_SERVICE_URLS", sandbox.connector_url()),
    ])?;
    config.token_service_url = Some(sandbox.url());
    let bot = SsoBot::from_config(config, CONNECTION, None).map_err(DemoError::Check)?;
    let addr = bot
        .spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| DemoError::Check(format!("cannot bind the bot: {e}")))?;
    let demo = Demo {
        sandbox,
        url: format!("http://{addr}{MESSAGES_PATH}"),
    };

    println!("\n1. \"whoami\" from a signed-out user");
    let (link, _) = demo.card().await?;
    println!("   ok: the bot answered with an OAuth card (sign-in link and tokenExchangeResource)");

    println!(
        "\n2. the user follows the sign-in link; Teams sends signin/verifyState with the code"
    );
    demo.sandbox
        .push_sign_ins_to(Some(ChatTarget::new(demo.url.as_str(), DEMO_CLIENT_ID)))
        .map_err(|e| DemoError::Check(e.to_string()))?;
    let before = demo.sandbox.connector_posts().len();
    let code = demo
        .sandbox
        .follow_sign_in_link(&link)
        .await
        .map_err(DemoError::Check)?;
    check(code.len() == 6, "the sign-in page shows no 6-digit code")?;
    let pushes = demo.sandbox.sign_in_pushes();
    let status = pushes
        .first()
        .and_then(|p| p.outcome.as_ref().ok())
        .map(|d| d.status);
    check(
        pushes.len() == 1 && pushes[0].name == "signin/verifyState" && status == Some(200),
        format!("expected one signin/verifyState answered 200, got {status:?}"),
    )?;
    let posts = demo.sandbox.connector_posts();
    check(
        posts.len() == before + 1 && posts[before].activity["text"] == "signed in as Sandbox User",
        "expected the bot to say it signed the user in",
    )?;
    let reply = demo.say("whoami").await?;
    check(
        reply["text"] == "you are Sandbox User",
        format!("got {}", reply["text"]),
    )?;
    println!(
        "   ok: the page showed a 6-digit code, the bot answered signin/verifyState 200 and has the user token: \"{}\"",
        reply["text"].as_str().unwrap_or_default()
    );

    println!("\n3. sign-out, then \"whoami\" again");
    let reply = demo.say("logout").await?;
    check(
        reply["text"] == "signed out",
        format!("got {}", reply["text"]),
    )?;
    let (_, id) = demo.card().await?;
    println!("   ok: signed out; the next message got a card again");

    println!("\n4. Teams SSO: two Teams clients send the same signin/tokenExchange");
    let first = demo
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, &id);
    let second = demo
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, &id);
    let (a, b) = tokio::join!(demo.deliver(&first), demo.deliver(&second));
    let (a, b) = (a?, b?);
    let mut bodies = [a.body.clone(), b.body.clone()];
    bodies.sort();
    check(
        a.status == 200 && b.status == 200,
        format!("expected 200 and 200, got {} and {}", a.status, b.status),
    )?;
    check(
        bodies[0].is_empty(),
        "the duplicate was not answered with an empty body",
    )?;
    let won: Value = serde_json::from_str(&bodies[1]).unwrap_or_default();
    check(
        won == json!({"id": id, "connectionName": CONNECTION}),
        format!("unexpected exchange answer {won}"),
    )?;
    check(
        demo.sandbox.token_exchanges() == 2,
        "both duplicates should have been exchanged first",
    )?;
    println!(
        "   ok: one answered 200 {{id, connectionName}}, the duplicate 200 with an empty body (de-duplicated)"
    );

    println!("\n5. Teams SSO without consent");
    demo.say("logout").await?;
    let (_, id) = demo.card().await?;
    demo.sandbox.set_consent_required(true);
    let invoke = demo
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, &id);
    let answer = demo.deliver(&invoke).await?;
    demo.sandbox.set_consent_required(false);
    let body: Value = serde_json::from_str(&answer.body).unwrap_or_default();
    check(
        answer.status == 412 && body["failureDetail"].is_string(),
        format!(
            "expected 412 with failureDetail, got {} {}",
            answer.status, answer.body
        ),
    )?;
    println!("   ok: 412 with failureDetail, so Teams shows the consent prompt and retries");

    println!("\n6. sign-out, then a message");
    let invoke = demo
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, &id);
    let answer = demo.deliver(&invoke).await?;
    check(
        answer.status == 200,
        format!("the consented exchange answered {}", answer.status),
    )?;
    demo.say("logout").await?;
    demo.card().await?;
    println!("   ok: after sign-out the next \"whoami\" gets a card again");
    Ok(())
}

pub(crate) async fn run() -> ExitCode {
    match demo().await {
        Ok(()) => {
            println!("\ndemo --sso passed: every step behaved as expected");
            ExitCode::SUCCESS
        }
        Err(DemoError::Botauth(e)) => crate::fail(&e),
        Err(DemoError::Check(what)) => {
            eprintln!("botauth: demo --sso failed: {what}");
            ExitCode::from(1)
        }
    }
}
