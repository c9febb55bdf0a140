//! Tokens with any header and claims, signed by the sandbox's real keys: what inbound-validator
//! tests need to probe every rule (wrong `alg`, `crit`, `jku`, odd claim types, Entra issuers).

use openssl::hash::MessageDigest;
use openssl::pkey::{PKeyRef, Private};
use serde_json::Value;

use crate::Sandbox;
use crate::jwt::sign_with;

/// Signs `header.claims` exactly as given. The signature follows the header's `alg` when it is
/// RS256, RS384, RS512 or PS256, and is RS256 for anything else (`none`, `HS256`, …), so a
/// validator must reject those on the header alone.
fn sign_as_given(key: &PKeyRef<Private>, header: &Value, claims: &Value) -> String {
    let (digest, pss) = match header.get("alg").and_then(Value::as_str) {
        Some("RS384") => (MessageDigest::sha384(), false),
        Some("RS512") => (MessageDigest::sha512(), false),
        Some("PS256") => (MessageDigest::sha256(), true),
        _ => (MessageDigest::sha256(), false),
    };
    // Signing with a well-formed in-memory RSA key only fails when OpenSSL cannot allocate.
    sign_with(header, claims, digest, pss, key).expect("RSA signing failed")
}

impl Sandbox {
    /// A token with exactly this header and these claims, signed by the current Bot Service key
    /// (whose kid is [`Sandbox::bot_service_kid`]; the header must name it to be found).
    pub fn sign_with_bot_service_key(&self, header: &Value, claims: &Value) -> String {
        let key = self.shared().lock().bot.current();
        sign_as_given(key.key(), header, claims)
    }

    /// A token with exactly this header and these claims, signed by the Entra key that
    /// `/{tenant}/discovery/v2.0/keys` publishes (kid [`Sandbox::entra_kid`]).
    pub fn sign_with_entra_key(&self, header: &Value, claims: &Value) -> String {
        sign_as_given(self.shared().entra_key.key(), header, claims)
    }

    /// The kid of the Entra signing key.
    pub fn entra_kid(&self) -> String {
        self.shared().entra_key.kid().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::Jws;
    use serde_json::json;

    #[tokio::test]
    async fn signs_exactly_what_it_is_given() {
        let sandbox = Sandbox::start().await.unwrap();
        let header = json!({"alg": "RS256", "kid": sandbox.bot_service_kid(), "jku": "https://evil.example/"});
        let token = sandbox.sign_with_bot_service_key(&header, &json!({"exp": "soon"}));
        let jws = Jws::parse(&token).unwrap();
        assert_eq!(jws.header_str("jku"), Some("https://evil.example/"));
        assert_eq!(jws.claims["exp"], "soon");
        let key = sandbox.shared().lock().bot.current();
        assert!(jws.verify(crate::jwt::Alg::Rs256, key.key()));

        let token = sandbox.sign_with_entra_key(
            &json!({"alg": "PS256", "kid": sandbox.entra_kid()}),
            &json!({}),
        );
        let jws = Jws::parse(&token).unwrap();
        assert!(jws.verify(crate::jwt::Alg::Ps256, sandbox.shared().entra_key.key()));
        let token = sandbox.sign_with_entra_key(&json!({"alg": "RS512"}), &json!({}));
        assert_eq!(token.rsplit('.').next().map(str::len), Some(342));
    }
}
