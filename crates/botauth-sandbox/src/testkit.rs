//! Helpers for the inline tests: a plain HTTP client and checks that do not trust the sandbox's own code.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::BigNum;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::jwt::{Alg, Jws};
use crate::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Sandbox};

pub(crate) const BOT_SCOPE: &str = "https://api.botframework.com/.default";

#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts an Entra error of this status, `error` and AADSTS code.
    #[track_caller]
    pub(crate) fn assert_entra_error(&self, status: u16, error: &str, code: u64) {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        assert_eq!(body["error"], error, "{}", self.text);
        assert_eq!(
            body["error_codes"],
            serde_json::json!([code]),
            "{}",
            self.text
        );
        let description = body["error_description"].as_str().unwrap();
        assert!(
            description.starts_with(&format!("AADSTS{code}: ")),
            "{description}"
        );
        for part in ["\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "] {
            assert!(description.contains(part), "{description}");
        }
        for field in ["trace_id", "correlation_id", "timestamp"] {
            assert!(body[field].is_string(), "{field}: {}", self.text);
        }
    }
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request to the sandbox");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("response body"),
    }
}

pub(crate) async fn get(url: &str) -> Reply {
    send(reqwest::Client::new().get(url)).await
}

/// POSTs `pairs` form-encoded, with extra `headers`.
pub(crate) async fn post_form(
    url: &str,
    pairs: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Reply {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request).await
}

pub(crate) async fn post_json(url: &str, body: &str, bearer: Option<&str>) -> Reply {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send(request).await
}

/// The demo app's secret request for the Bot Connector scope.
pub(crate) fn secret_form() -> Vec<(&'static str, &'static str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", DEMO_CLIENT_ID),
        ("client_secret", DEMO_CLIENT_SECRET),
        ("scope", BOT_SCOPE),
    ]
}

/// The demo form with `name` set to `value`, or removed when `None`.
pub(crate) fn secret_form_with<'a>(
    name: &'a str,
    value: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut form: Vec<(&str, &str)> = secret_form()
        .into_iter()
        .filter(|(n, _)| *n != name)
        .collect();
    if let Some(value) = value {
        form.push((name, value));
    }
    form
}

pub(crate) async fn demo_token_reply(sandbox: &Sandbox) -> Reply {
    post_form(&sandbox.token_endpoint(DEMO_TENANT_ID), &secret_form(), &[]).await
}

pub(crate) async fn demo_token(sandbox: &Sandbox) -> String {
    let reply = demo_token_reply(sandbox).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// Verifies an RS256 token against a served JWKS (by `kid`, key rebuilt from `n`/`e`), returning the
/// claims and the JWK used.
pub(crate) fn verify_with_jwks(token: &str, jwks: &Value) -> Result<(Value, Value), String> {
    let jws = Jws::parse(token).ok_or("not a JWS")?;
    let kid = jws.header_str("kid").ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .ok_or("no keys")?
        .iter()
        .find(|k| k["kid"] == kid)
        .ok_or("kid not in JWKS")?;
    let number = |name: &str| {
        let bytes = URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
        BigNum::from_slice(&bytes).unwrap()
    };
    let key =
        PKey::from_rsa(Rsa::from_public_components(number("n"), number("e")).unwrap()).unwrap();
    if !jws.verify(Alg::Rs256, &key) {
        return Err("bad signature".into());
    }
    Ok((Value::Object(jws.claims), jwk.clone()))
}
