//! The sandbox's Token Service held to the protocol with raw HTTP (no botauth client): bearer
//! rules, required parameters, the exchange body, `state`, the sign-in page, every status.

use base64::Engine as _;
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, DEMO_USER_ID, Sandbox};
use serde_json::{Value, json};

async fn bot_token(sandbox: &Sandbox, scope: &str) -> String {
    let response = reqwest::Client::new()
        .post(sandbox.token_endpoint(DEMO_TENANT_ID))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={}&scope={}",
            urlencode(DEMO_CLIENT_SECRET),
            urlencode(scope)
        ))
        .send()
        .await
        .expect("token service test")
        .text()
        .await
        .expect("token service test");
    let response: Value = serde_json::from_str(&response).expect("token service test");
    response["access_token"]
        .as_str()
        .expect("token service test")
        .to_owned()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

struct Service {
    sandbox: Sandbox,
    token: String,
    http: reqwest::Client,
}

impl Service {
    async fn start() -> Service {
        let sandbox = Sandbox::start().await.expect("token service test");
        sandbox.register_oauth_connection("graph");
        let token = bot_token(&sandbox, "https://api.botframework.com/.default").await;
        Service {
            sandbox,
            token,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> (u16, String) {
        let mut request = self
            .http
            .request(method, format!("{}/{path_and_query}", self.sandbox.url()));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("token service test");
        let status = response.status().as_u16();
        (status, response.text().await.expect("token service test"))
    }

    async fn get(&self, path_and_query: &str) -> (u16, String) {
        self.call(
            reqwest::Method::GET,
            path_and_query,
            None,
            Some(&self.token.clone()),
        )
        .await
    }

    async fn post(&self, path_and_query: &str, body: Value) -> (u16, String) {
        self.call(
            reqwest::Method::POST,
            path_and_query,
            Some(body),
            Some(&self.token.clone()),
        )
        .await
    }
}

fn state(connection: &str, user: &str) -> String {
    let json = json!({
        "connectionName": connection,
        "conversation": {"user": {"id": user}, "channelId": "msteams", "conversation": {"id": "c"}},
        "relatesTo": null,
        "msAppId": DEMO_CLIENT_ID,
    });
    urlencode(&base64::engine::general_purpose::STANDARD.encode(json.to_string()))
}

const USER_Q: &str = "userId=29%3Auser&connectionName=graph&channelId=msteams";

#[tokio::test]
async fn the_bearer_must_be_a_channel_token_of_this_sandbox() {
    let s = Service::start().await;
    let path = format!("api/usertoken/GetToken?{USER_Q}");
    let (status, _) = s.call(reqwest::Method::GET, &path, None, None).await;
    assert_eq!(status, 401);
    let (status, _) = s
        .call(reqwest::Method::GET, &path, None, Some("forged"))
        .await;
    assert_eq!(status, 401);
    // A token for another resource (a skill's audience) is refused.
    s.sandbox.accept_resource("api://other-bot");
    let skill = bot_token(&s.sandbox, "api://other-bot/.default").await;
    let (status, body) = s
        .call(reqwest::Method::GET, &path, None, Some(&skill))
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not a Bot Connector resource"), "{body}");
    let (status, _) = s.get(&path).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn get_token_404_has_an_empty_body_and_parameters_are_required() {
    let s = Service::start().await;
    let (status, body) = s.get(&format!("api/usertoken/GetToken?{USER_Q}")).await;
    assert_eq!((status, body.as_str()), (404, ""));
    let (status, body) = s.get("api/usertoken/GetToken?connectionName=graph").await;
    assert_eq!(status, 400);
    assert!(body.contains("'userId'"), "{body}");
    let (status, body) = s
        .get("api/usertoken/GetToken?userId=u&connectionName=Graph")
        .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("Could not find Connection Setting with name 'Graph'"),
        "{body}"
    );
}

#[tokio::test]
async fn sign_in_link_code_and_token_once() {
    let s = Service::start().await;
    let (status, body) = s
        .get(&format!(
            "api/botsignin/GetSignInResource?state={}",
            state("graph", "29:user")
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let resource: Value = serde_json::from_str(&body).expect("token service test");
    assert_eq!(
        resource["tokenExchangeResource"]["uri"],
        format!("api://botid-{DEMO_CLIENT_ID}")
    );
    assert!(resource["tokenPostResource"]["sasUrl"].is_string());
    let link = resource["signInLink"].as_str().expect("token service test");
    let page = reqwest::get(link)
        .await
        .expect("token service test")
        .text()
        .await
        .expect("token service test");
    assert!(page.contains("id=\"magic-code\""), "{page}");
    let again = reqwest::get(link).await.expect("token service test");
    assert_eq!(again.status(), 404, "links work once");
    let code = s.sandbox.follow_sign_in_link(link).await;
    assert!(code.is_err());

    // The code shown works for that user only, once.
    let (_, body) = s
        .get(&format!(
            "api/botsignin/GetSignInResource?state={}",
            state("graph", "29:user")
        ))
        .await;
    let resource: Value = serde_json::from_str(&body).expect("token service test");
    let code = s
        .sandbox
        .follow_sign_in_link(resource["signInLink"].as_str().expect("token service test"))
        .await
        .expect("token service test");
    let (status, _) = s
        .get(&format!("api/usertoken/GetToken?userId=29%3Aother&connectionName=graph&channelId=msteams&code={code}"))
        .await;
    assert_eq!(status, 404);
    let (status, body) = s
        .get(&format!("api/usertoken/GetToken?{USER_Q}&code={code}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).expect("token service test");
    assert_eq!(token["connectionName"], "graph");
    assert!(token["expiration"].is_string());
    let (status, _) = s.get(&format!("api/usertoken/GetToken?{USER_Q}")).await;
    assert_eq!(status, 200);

    // Unpadded or URL-safe state and unknown connections are refused.
    let (status, _) = s.get("api/botsignin/GetSignInResource?state=e30").await;
    assert_eq!(status, 400);
    let (status, body) = s
        .get(&format!(
            "api/botsignin/GetSignInResource?state={}",
            state("nope", "u")
        ))
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("Could not find Connection Setting"), "{body}");
    // GetSignInUrl: text/plain.
    let response = s
        .http
        .get(format!(
            "{}/api/botsignin/GetSignInUrl?state={}",
            s.sandbox.url(),
            state("graph", "u")
        ))
        .bearer_auth(&s.token)
        .header("accept", "text/plain")
        .send()
        .await
        .expect("token service test");
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .expect("token service test")
            .starts_with("http://127.0.0.1:")
    );
}

#[tokio::test]
async fn exchange_status_codes() {
    let s = Service::start().await;
    let path = format!("api/usertoken/exchange?{USER_Q}");
    let sso = s.sandbox.mint_teams_sso_token(DEMO_CLIENT_ID);
    // A wrapped body: 400.
    let (status, body) = s
        .post(&path, json!({"exchangeRequest": {"token": sso}}))
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("flat"), "{body}");
    // channelId is required.
    let (status, _) = s
        .post(
            "api/usertoken/exchange?userId=u&connectionName=graph",
            json!({"token": sso}),
        )
        .await;
    assert_eq!(status, 400);
    // Another audience: 400.
    let other = s.sandbox.mint_teams_sso_token("someone-else");
    let (status, _) = s.post(&path, json!({"token": other})).await;
    assert_eq!(status, 400);
    // Consent required: 400.
    s.sandbox.set_consent_required(true);
    let (status, body) = s.post(&path, json!({"token": sso})).await;
    assert_eq!(status, 400);
    assert!(body.contains("AADSTS65001"), "{body}");
    s.sandbox.set_consent_required(false);
    // A uri exchange: 404.
    let (status, _) = s.post(&path, json!({"uri": "https://x"})).await;
    assert_eq!(status, 404);
    // Injected 500.
    s.sandbox.inject_token_service_status(500, None, 1);
    let (status, _) = s.post(&path, json!({"token": sso})).await;
    assert_eq!(status, 500);
    // 200, also with the SSO token the sandbox hands out over HTTP (as Teams would).
    let minted = reqwest::get(format!(
        "{}/api/sandbox/teams-sso-token?botAppId={DEMO_CLIENT_ID}",
        s.sandbox.url()
    ))
    .await
    .expect("sso token")
    .text()
    .await
    .expect("sso token body");
    let (status, body) = s.post(&path, json!({"token": minted})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.post(&path, json!({"token": sso})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(s.sandbox.token_exchanges(), 2);
    assert!(s.sandbox.has_user_token("29:user", "graph", "msteams"));
}

#[tokio::test]
async fn status_aad_tokens_and_sign_out() {
    let s = Service::start().await;
    s.post(
        &format!("api/usertoken/exchange?{USER_Q}"),
        json!({"token": s.sandbox.mint_teams_sso_token(DEMO_CLIENT_ID)}),
    )
    .await;
    let (status, body) = s
        .get("api/usertoken/GetTokenStatus?userId=29%3Auser&channelId=msteams")
        .await;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&body).expect("token service test");
    assert_eq!(list[0]["hasToken"], true);
    let (status, body) = s
        .post(
            &format!("api/usertoken/GetAadTokens?{USER_Q}"),
            json!({"resourceUrls": ["https://graph.microsoft.com"]}),
        )
        .await;
    assert_eq!(status, 200);
    let map: Value = serde_json::from_str(&body).expect("token service test");
    assert!(map["https://graph.microsoft.com"]["token"].is_string());
    let (status, body) = s
        .call(
            reqwest::Method::DELETE,
            "api/usertoken/SignOut?userId=29%3Auser&connectionName=graph&channelId=msteams",
            None,
            Some(&s.token.clone()),
        )
        .await;
    assert_eq!((status, body.as_str()), (200, "{}"));
    assert!(!s.sandbox.has_user_token("29:user", "graph", "msteams"));
    assert!(!s.sandbox.has_user_token(DEMO_USER_ID, "graph", "msteams"));
}
