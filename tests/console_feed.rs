//! The sandbox web console's event feed over real HTTP (docs/console.md): what it reports of a
//! full two-way flow with a secret and a certificate bot, the faults it applies, and what it must
//! never carry: a client secret (registered or wrong), a private key, the managed identity
//! secret header, or any token's signature.

use std::sync::Arc;
use std::time::{Duration, Instant};

use botauth_e2e::{RunningBot, form_encoded, jwt_and_parts};
use botauth_sandbox::{
    ChatTarget, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, DEMO_USER_ID, DemoCredential,
    Sandbox,
};
use serde_json::{Value, json};

/// A secret nobody registered: refused with AADSTS7000215, and still never shown.
const WRONG_SECRET: &str = "wrong~Secret+value/that=leaks";

/// POSTs a console action; returns the status.
async fn act(sandbox: &Sandbox, action: &Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/actions", sandbox.console_url()))
        .header("content-type", "application/json")
        .body(action.to_string())
        .send()
        .await
        .expect("the console answers")
        .status()
        .as_u16()
}

/// Everything `/console/events` sends until it has been quiet for half a second.
async fn feed(sandbox: &Sandbox) -> String {
    let mut response = reqwest::Client::new()
        .get(format!("{}/events", sandbox.console_url()))
        .send()
        .await
        .expect("the console answers");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), response.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    text
}

/// The `data:` of each event of a feed, parsed.
fn events(feed: &str) -> Vec<Value> {
    feed.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).expect("each event is JSON"))
        .collect()
}

/// Waits until `done` holds (the console's runner works in the background).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every run of base64url characters and dots shaped like a signed JWT (three parts, the last
/// one long enough to be a signature).
fn signed_jwts(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .filter(|run| {
            let parts: Vec<&str> = run.split('.').collect();
            parts.len() == 3 && parts[2].len() >= 16 && !parts[0].is_empty()
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_shows_both_directions_and_never_a_secret() {
    let sandbox = Arc::new(Sandbox::start().await.unwrap());
    let secret_env = sandbox.demo_environment(DemoCredential::Secret).unwrap();
    let cert_env = sandbox
        .demo_environment(DemoCredential::Certificate)
        .unwrap();
    let bot = RunningBot::start(&secret_env).await;
    let cert_bot = RunningBot::start(&cert_env).await;
    let console = Arc::new(sandbox.open_console(Some(ChatTarget::new(&bot.url, &bot.app_id))));
    let runner = {
        let (sandbox, console) = (Arc::clone(&sandbox), Arc::clone(&console));
        tokio::spawn(async move { console.run(&sandbox).await })
    };

    // The page's actions, as the page sends them.
    assert_eq!(act(&sandbox, &json!({"action": "join"})).await, 202);
    assert_eq!(
        act(&sandbox, &json!({"action": "say", "text": "hello"})).await,
        202
    );
    until("the echo", || sandbox.connector_posts().len() == 1).await;
    assert_eq!(
        act(
            &sandbox,
            &json!({"action": "fault", "fault": "forged-audience"})
        )
        .await,
        202
    );
    for fault in ["token-503", "expire-token"] {
        assert_eq!(
            act(&sandbox, &json!({"action": "fault", "fault": fault})).await,
            202
        );
    }
    assert_eq!(
        act(&sandbox, &json!({"action": "say", "text": "hello again"})).await,
        202
    );
    until("the echo after the retry", || {
        sandbox.connector_posts().len() == 2
    })
    .await;

    // The certificate bot, driven directly: the console reports every bot the sandbox serves.
    let (activity, token) = cert_bot.message(&sandbox, "from the certificate bot");
    assert_eq!(
        cert_bot
            .deliver(&sandbox, &activity, Some(&token))
            .await
            .status,
        200
    );
    // A refused token request, with a secret that is registered nowhere.
    let refused = reqwest::Client::new()
        .post(sandbox.token_endpoint(DEMO_TENANT_ID))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&scope=https%3A%2F%2Fapi.botframework.com%2F.default&client_secret={}",
            form_encoded(WRONG_SECRET)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let text = feed(&sandbox).await;
    let all = events(&text);
    let of_kind =
        |kind: &str| -> Vec<&Value> { all.iter().filter(|e| e["kind"] == kind).collect() };

    // Inbound: the channel token decoded, the bot's answers (200, then 401 to the forgery).
    let inbound = of_kind("inbound");
    assert_eq!(inbound.len(), 4, "join, hello, forged, hello again");
    let hello = inbound
        .iter()
        .find(|e| e["activity"]["text"] == "hello")
        .expect("the hello activity");
    assert_eq!(hello["token"]["claims"]["aud"], bot.app_id);
    assert_eq!(
        hello["token"]["claims"]["serviceurl"],
        sandbox.connector_url()
    );
    assert_eq!(hello["token"]["header"]["kid"], sandbox.bot_service_kid());
    assert!(
        hello["endorsements"]
            .as_array()
            .unwrap()
            .contains(&json!("msteams"))
    );
    let forged = inbound.iter().find(|e| !e["forged"].is_null()).unwrap();
    let forged_answer = all
        .iter()
        .find(|e| e["kind"] == "delivery" && e["turn"] == forged["turn"])
        .unwrap();
    assert_eq!(forged_answer["status"], 401);
    assert_eq!(forged_answer["www_authenticate"], "Bearer");

    // Outbound: the credential kinds, the injected 503 and its retry, the refusal's AADSTS code.
    let tokens = of_kind("token_request");
    let secret = tokens
        .iter()
        .find(|e| e["credential"]["type"] == "secret" && e["status"] == 200)
        .unwrap();
    assert_eq!(secret["credential"]["secret"], "[redacted]");
    assert_eq!(
        secret["credential"]["length"],
        DEMO_CLIENT_SECRET.chars().count()
    );
    assert_eq!(secret["issued"]["claims"]["appid"], DEMO_CLIENT_ID);
    let certificate = tokens
        .iter()
        .find(|e| e["credential"]["type"] == "certificate")
        .unwrap();
    assert_eq!(certificate["status"], 200);
    assert_eq!(
        certificate["credential"]["x5t"],
        certificate["credential"]["assertion"]["header"]["x5t"]
    );
    assert_eq!(
        certificate["credential"]["assertion"]["claims"]["aud"],
        sandbox.token_endpoint(DEMO_TENANT_ID)
    );
    let injected = tokens
        .iter()
        .find(|e| e["status"] == 503 && e["injected"] == true)
        .expect("the injected 503");
    let retry = tokens
        .iter()
        .find(|e| e["retry_of"] == injected["id"])
        .expect("the retry of the 503");
    assert_eq!(retry["status"], 200);
    let wrong = tokens.iter().find(|e| e["status"] == 401).unwrap();
    assert_eq!(wrong["error"]["code"], "AADSTS7000215");
    assert_eq!(wrong["credential"]["secret"], "[redacted]");

    // The Connector: each call's token claims and verdict; the expired token's 401.
    let calls = of_kind("connector_call");
    assert!(calls.iter().any(|e| e["status"] == 200
        && e["verdict"] == "accepted"
        && e["token"]["claims"]["aud"] == "https://api.botframework.com"
        && e["activity"]["text"] == "echo: hello"));
    assert!(calls.iter().any(|e| {
        e["status"] == 401
            && e["verdict"]
                .as_str()
                .unwrap()
                .contains("expired from the console")
    }));

    // Never: secrets, keys, the identity header, any signature.
    let key_file = cert_env
        .bot_vars()
        .iter()
        .find(|(k, _)| k == "Connections__ServiceConnection__Settings__CertKeyFile")
        .map(|(_, v)| v.clone())
        .unwrap();
    let key_pem = std::fs::read_to_string(key_file).unwrap();
    let mut forbidden = vec![
        DEMO_CLIENT_SECRET.to_owned(),
        form_encoded(DEMO_CLIENT_SECRET),
        WRONG_SECRET.to_owned(),
        form_encoded(WRONG_SECRET),
        sandbox.identity_header(),
        "PRIVATE KEY".to_owned(),
    ];
    forbidden.extend(
        key_pem
            .lines()
            .filter(|line| !line.starts_with("-----") && line.len() > 16)
            .map(str::to_owned),
    );
    for bot in [&bot, &cert_bot] {
        let (token, _) = bot
            .auth
            .tokens()
            .get_token_with_source(bot.auth.connector_request())
            .await
            .unwrap();
        let token = token.token.expose_secret().to_owned();
        forbidden.extend(jwt_and_parts(&token).into_iter().skip(2));
    }
    for needle in &forbidden {
        assert!(!text.contains(needle.as_str()), "the feed leaked {needle}");
    }
    assert_eq!(signed_jwts(&text), Vec::<String>::new());
    assert!(text.contains("[elided: "), "tokens are shown decoded");
    runner.abort();
}

#[tokio::test]
async fn the_console_answers_only_its_own_page_on_loopback() {
    let sandbox = Sandbox::start().await.unwrap();
    let client = reqwest::Client::new();
    let url = sandbox.console_url();
    // Off until opened.
    assert_eq!(client.get(&url).send().await.unwrap().status(), 404);
    let console = sandbox.open_console(None);
    let page = client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no remote assets"
    );
    for asset in ["console.js", "console.css"] {
        let response = client.get(format!("{url}/{asset}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
    }
    // A DNS-rebinding page reaches 127.0.0.1 under its own host name.
    let rebound = client
        .get(&url)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    let action = json!({"action": "fault", "fault": "token-503"}).to_string();
    let post = |content_type: &'static str, origin: Option<&'static str>| {
        let mut request = client
            .post(format!("{url}/actions"))
            .header("content-type", content_type)
            .body(action.clone());
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    // A cross-site form can only send these types.
    assert_eq!(post("text/plain", None).await.unwrap().status(), 415);
    assert_eq!(
        post("application/json", Some("https://evil.example"))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(post("application/json", None).await.unwrap().status(), 202);
    // Nobody left to carry actions out.
    drop(console);
    assert_eq!(post("application/json", None).await.unwrap().status(), 503);
    let unknown = client
        .post(format!("{url}/actions"))
        .header("content-type", "application/json")
        .body(r#"{"action":"fault","fault":"melt-the-cpu"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 400);
}

/// Standard base64 of the SDKs' `state`, as the sign-in endpoints receive it.
fn sign_in_state(connection: &str) -> String {
    use base64::Engine as _;
    let state = json!({
        "connectionName": connection,
        "conversation": {
            "user": {"id": DEMO_USER_ID},
            "channelId": "msteams",
            "conversation": {"id": "c"},
        },
        "relatesTo": null,
        "msAppId": DEMO_CLIENT_ID,
    });
    base64::engine::general_purpose::STANDARD.encode(state.to_string())
}

/// Whether `text` holds `digits` as a whole number (not inside a longer one).
fn holds_number(text: &str, digits: &str) -> bool {
    text.match_indices(digits).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_shows_the_sign_in_flow_and_never_its_secrets() {
    const CONNECTION: &str = "graph";
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.register_oauth_connection(CONNECTION);
    let _console = sandbox.open_console(None);
    let http = reqwest::Client::new();
    let answer = http
        .post(sandbox.token_endpoint(DEMO_TENANT_ID))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&scope=https%3A%2F%2Fapi.botframework.com%2F.default&client_secret={}",
            form_encoded(DEMO_CLIENT_SECRET)
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let bearer = answer["access_token"].as_str().unwrap().to_owned();
    let base = sandbox.url();
    let user = format!(
        "userId={}&connectionName={CONNECTION}&channelId=msteams",
        form_encoded(DEMO_USER_ID)
    );
    let call = |method: reqwest::Method, path_and_query: String, body: Option<Value>| {
        let mut request = http
            .request(method, format!("{base}/{path_and_query}"))
            .bearer_auth(&bearer);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let get = |path_and_query: String| call(reqwest::Method::GET, path_and_query, None);

    // Not signed in yet; the sign-in link, followed as the user's browser; the magic code.
    let (status, _) = get(format!("api/usertoken/GetToken?{user}")).await;
    assert_eq!(status, 404);
    let state = sign_in_state(CONNECTION);
    let (status, resource) = get(format!(
        "api/botsignin/GetSignInResource?state={}",
        form_encoded(&state)
    ))
    .await;
    assert_eq!(status, 200, "{resource}");
    let resource: Value = serde_json::from_str(&resource).unwrap();
    let link = resource["signInLink"].as_str().unwrap().to_owned();
    let sas = resource["tokenPostResource"]["sasUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let code = sandbox.follow_sign_in_link(&link).await.unwrap();
    assert_eq!(code.len(), 6);
    let (status, _) = get(format!("api/usertoken/GetToken?{user}&code=000000x")).await;
    assert_eq!(status, 404, "a wrong code");
    let (status, _) = get(format!("api/usertoken/GetToken?{user}&code={code}")).await;
    assert_eq!(status, 200);
    let (status, _) = get(format!("api/usertoken/GetTokenStatus?{user}")).await;
    assert_eq!(status, 200);
    let (status, _) = call(
        reqwest::Method::DELETE,
        format!("api/usertoken/SignOut?{user}"),
        None,
    )
    .await;
    assert_eq!(status, 200);

    // Teams SSO: consent required first, then the token.
    let sso = sandbox.mint_teams_sso_token(DEMO_CLIENT_ID);
    sandbox.set_consent_required(true);
    let exchange = || {
        call(
            reqwest::Method::POST,
            format!("api/usertoken/exchange?{user}"),
            Some(json!({"token": sso})),
        )
    };
    assert_eq!(exchange().await.0, 400);
    sandbox.set_consent_required(false);
    assert_eq!(exchange().await.0, 200);

    let text = feed(&sandbox).await;
    let sign_ins: Vec<Value> = events(&text)
        .into_iter()
        .filter(|e| e["kind"] == "sign_in")
        .collect();
    let seen: Vec<(&str, u64, &str)> = sign_ins
        .iter()
        .map(|e| {
            (
                e["operation"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("GetToken", 404, "no token"),
            (
                "GetSignInResource",
                200,
                "sign-in link and token exchange resource issued"
            ),
            (
                "sign-in page followed",
                200,
                "signed in; the page shows the magic code"
            ),
            ("GetToken", 404, "no token: the magic code was not accepted"),
            ("GetToken", 200, "token released for the magic code"),
            ("GetTokenStatus", 200, "graph: token"),
            ("SignOut", 200, "signed out"),
            ("exchange", 400, "exchange: consent required"),
            ("exchange", 200, "Teams SSO exchange → token"),
        ]
    );
    for event in &sign_ins {
        assert_eq!(event["connection"], CONNECTION, "{event}");
        assert_eq!(event["channel"], "msteams", "{event}");
        assert_eq!(event["injected"], false, "{event}");
    }
    assert_eq!(sign_ins[2]["from"], "user's browser");
    assert_eq!(sign_ins[2]["path"], "/api/sandbox/signin");
    assert_eq!(
        sign_ins[2]["withheld"],
        json!(["sign-in link id: [redacted]", "magic code: [redacted]"])
    );
    assert_eq!(
        sign_ins[1]["withheld"],
        json!([
            "state: [redacted]",
            "sign-in link: [redacted]",
            "SAS URL: [redacted]"
        ])
    );
    assert_eq!(
        sign_ins[4]["withheld"],
        json!(["code: [redacted]", "user token: [redacted]"])
    );
    assert_eq!(
        sign_ins[8]["withheld"],
        json!(["SSO token: [redacted]", "user token: [redacted]"])
    );

    // Never: the code, a user token, `state`, the link or its id, the SAS URL, the SSO token.
    assert!(
        !holds_number(&text, &code),
        "the feed leaked the magic code"
    );
    let link_id = link.rsplit_once("id=").unwrap().1.to_owned();
    let mut forbidden = vec![
        state.clone(),
        form_encoded(&state),
        link.clone(),
        link_id,
        sas.clone(),
        "/api/sandbox/sas/".to_owned(),
        "sasUrl".to_owned(),
        "signInLink".to_owned(),
    ];
    let user_tokens = sandbox.issued_user_tokens();
    assert_eq!(user_tokens.len(), 2, "the code's token and the exchange's");
    for token in user_tokens.iter().chain([&sso]) {
        forbidden.extend(jwt_and_parts(token).into_iter().skip(1));
    }
    for needle in &forbidden {
        assert!(!text.contains(needle.as_str()), "the feed leaked {needle}");
    }
    assert_eq!(signed_jwts(&text), Vec::<String>::new());
}
