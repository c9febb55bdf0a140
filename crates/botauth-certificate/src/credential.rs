//! [`CertificateCredential`]: the client-credentials grant with a certificate client assertion.

use std::sync::Arc;

use async_trait::async_trait;
use botauth_core::{
    AccessToken, BotAuthConfig, Cloud, CredentialConfig, CredentialInfo, CredentialProvider,
    Result, TokenRequest,
};
use botauth_http::ClientSettings;
use botauth_token::{ClientAuth, ClientCredentialsClient, ClientCredentialsClientBuilder};

use crate::assertion::CertificateAssertion;
use crate::thumbprint::Thumbprints;

/// A certificate credential: the token crate's client-credentials client, authenticated by a
/// [`CertificateAssertion`].
#[derive(Debug)]
pub struct CertificateCredential {
    client: ClientCredentialsClient,
    assertion: Arc<CertificateAssertion>,
}

/// Builds a [`CertificateCredential`]: the client-credentials client's builder around an
/// assertion that has already loaded its certificate.
#[derive(Debug)]
pub struct CertificateCredentialBuilder {
    assertion: Arc<CertificateAssertion>,
    client: ClientCredentialsClientBuilder,
}

impl CertificateCredentialBuilder {
    /// The shared settings ([`ClientSettings`]): authority host or cloud, HTTP client and limits,
    /// and the clock for token expiry times. The assertion has its own clock
    /// ([`CertificateAssertionBuilder::clock`](crate::CertificateAssertionBuilder::clock)).
    pub fn settings(mut self, settings: ClientSettings) -> Self {
        self.client = self.client.settings(settings);
        self
    }

    /// Validates the tenant, client id and authority, and builds the credential.
    pub fn build(self) -> Result<CertificateCredential> {
        Ok(CertificateCredential {
            client: self.client.build()?,
            assertion: self.assertion,
        })
    }
}

impl CertificateCredential {
    /// A builder for app `client_id` in `tenant_id`, signing with `assertion`, on the public cloud.
    pub fn builder(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        assertion: CertificateAssertion,
    ) -> CertificateCredentialBuilder {
        let assertion = Arc::new(assertion);
        CertificateCredentialBuilder {
            client: ClientCredentialsClient::builder(
                Cloud::Public.authority_host(),
                tenant_id,
                client_id,
                ClientAuth::Assertion(assertion.clone()),
            ),
            assertion,
        }
    }

    /// The credential a `certificate` entry of `config` describes, with `config`'s client id,
    /// tenant, cloud and HTTP timeout: the one way configuration becomes this credential.
    ///
    /// # Errors
    ///
    /// A configuration error when `entry` is of another type or the client id or tenant is
    /// missing; the certificate's own errors when it cannot be loaded.
    pub fn from_entry(config: &BotAuthConfig, entry: &CredentialConfig) -> Result<Self> {
        let CredentialConfig::Certificate(cert) = entry else {
            return Err(entry.not_an_entry_for("a certificate credential"));
        };
        let client_id = config.require_client_id("client_id")?;
        let tenant_id = config.require_tenant_id("tenant_id")?;
        let assertion = CertificateAssertion::from_config(cert)?
            .build()
            .map_err(|e| e.for_config(cert))?;
        Self::builder(tenant_id, client_id, assertion)
            .settings(ClientSettings::from_config(config))
            .build()
    }

    /// The thumbprints of the certificate in use (it changes when the files are rotated).
    pub fn thumbprints(&self) -> Thumbprints {
        self.assertion.thumbprints()
    }
}

#[async_trait]
impl CredentialProvider for CertificateCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        self.client.request_token(request).await
    }

    fn describe(&self) -> CredentialInfo {
        self.client.describe()
    }
}

#[cfg(test)]
mod tests {
    use botauth_core::config::AssertionAlgorithm;
    use botauth_core::{ErrorKind, Secret};
    use botauth_sandbox::{AppRegistration, Fault, Route, Sandbox};
    use openssl::x509::X509;

    use super::*;
    use crate::fixtures::{PASSWORD, copy, path, read, sha1_hex};
    use crate::source::CertificateSource;
    use botauth_core::Error;

    const TENANT: &str = "cert-tenant";
    const APP: &str = "c0ffee00-1111-2222-3333-444444444444";
    const SCOPE: &str = "https://api.botframework.com/.default";

    fn der(pem_name: &str) -> Vec<u8> {
        X509::from_pem(&read(pem_name)).unwrap().to_der().unwrap()
    }

    async fn sandbox_with(certs: &[&str]) -> Sandbox {
        let sandbox = Sandbox::start().await.unwrap();
        register(&sandbox, certs);
        sandbox
    }

    fn register(sandbox: &Sandbox, certs: &[&str]) {
        let mut app = AppRegistration::new(APP, TENANT);
        for c in certs {
            app = app.with_certificate_der(der(c));
        }
        sandbox.register_app(app);
    }

    fn credential(sandbox: &Sandbox, assertion: CertificateAssertion) -> CertificateCredential {
        CertificateCredential::builder(TENANT, APP, assertion)
            .settings(botauth_http::ClientSettings::new().authority_host(sandbox.url()))
            .build()
            .unwrap()
    }

    /// The assertion of `rsa2048.combined.pem` (certificate and key in one file).
    fn combined_pem() -> CertificateAssertion {
        CertificateAssertion::builder(CertificateSource::file(path("rsa2048.combined.pem")))
            .build()
            .unwrap()
    }

    async fn token(c: &CertificateCredential) -> Result<AccessToken> {
        c.get_token(&TokenRequest::new(SCOPE)).await
    }

    fn code(e: &Error) -> Option<u32> {
        e.as_entra().and_then(|x| x.code())
    }

    #[tokio::test]
    async fn every_source_and_header_option_gets_a_token() {
        let sandbox = sandbox_with(&["rsa2048.pem", "leaf.pem"]).await;
        let pw = || Secret::new(PASSWORD);
        let cases = [
            CertificateAssertion::builder(CertificateSource::pem_files(
                path("rsa2048.pem"),
                path("rsa2048.enc.key"),
            ))
            .password(pw()),
            CertificateAssertion::builder(CertificateSource::file(path("rsa2048.3des.pfx")))
                .password(pw())
                .algorithm(AssertionAlgorithm::Ps256),
            CertificateAssertion::builder(CertificateSource::file(path("chain.pfx")))
                .password(pw())
                .send_x5c(true),
            CertificateAssertion::builder(CertificateSource::key_file(path("rsa2048.pkcs1.key")))
                .thumbprint(sha1_hex("rsa2048.pem")),
        ];
        for (i, builder) in cases.into_iter().enumerate() {
            let c = credential(&sandbox, builder.build().unwrap());
            let t = token(&c).await.unwrap_or_else(|e| panic!("case {i}: {e}"));
            let claims = sandbox
                .verify_access_token(t.token.expose_secret())
                .unwrap();
            assert_eq!(claims["appid"], APP, "case {i}");
        }
        assert_eq!(sandbox.count(Route::Token), 4);
    }

    #[tokio::test]
    async fn describes_itself() {
        let sandbox = sandbox_with(&[]).await;
        let c = credential(&sandbox, combined_pem());
        let info = c.describe();
        assert_eq!(info.kind, "certificate");
        assert_eq!(info.client_id.as_deref(), Some(APP));
        assert_eq!(
            c.client.token_endpoint(None),
            sandbox.token_endpoint(TENANT)
        );
        assert_eq!(c.thumbprints().sha1_hex(), sha1_hex("rsa2048.pem"));
        let debug = format!("{c:?}");
        assert!(debug.contains("[redacted RSA-2048]"), "{debug}");
    }

    #[tokio::test]
    async fn an_unregistered_certificate_is_700027_after_one_reload_and_retry() {
        let sandbox = sandbox_with(&["other2048.pem"]).await;
        let c = credential(&sandbox, combined_pem());
        let e = token(&c).await.unwrap_err();
        assert_eq!(code(&e), Some(700027));
        assert!(e.to_string().contains("not registered"), "{e}");
        assert_eq!(sandbox.count(Route::Token), 2, "one retry, not more");
    }

    #[tokio::test]
    async fn a_wrong_user_thumbprint_is_7000274() {
        // Thumbprint-only mode cannot check the key against the certificate: Entra does.
        let sandbox = sandbox_with(&["other2048.pem"]).await;
        let c = credential(
            &sandbox,
            CertificateAssertion::builder(CertificateSource::key_file(path("rsa2048.key")))
                .thumbprint(sha1_hex("other2048.pem"))
                .build()
                .unwrap(),
        );
        let e = token(&c).await.unwrap_err();
        assert_eq!(code(&e), Some(7000274));
        assert_eq!(e.kind(), ErrorKind::Rejected);
    }

    fn entra_fault(code: u32) -> Fault {
        Fault::Status {
            status: 401,
            body: Some(format!(
                r#"{{"error":"invalid_client","error_description":"AADSTS{code}: injected","error_codes":[{code}]}}"#
            )),
            retry_after: None,
        }
    }

    #[tokio::test]
    async fn reload_once_codes_reload_and_retry_once_and_others_do_not() {
        let sandbox = sandbox_with(&["rsa2048.pem"]).await;
        let c = credential(&sandbox, combined_pem());
        for reload in [700027, 7000274, 700024, 1000502, 7000214, 7000277] {
            sandbox.clear_log();
            sandbox.inject(Route::Token, entra_fault(reload));
            token(&c).await.unwrap_or_else(|e| panic!("{reload}: {e}"));
            assert_eq!(
                sandbox.count(Route::Token),
                2,
                "{reload}: rejected, then retried"
            );
        }
        for final_code in [700021, 700023, 7000215, 700016] {
            sandbox.clear_log();
            sandbox.inject(Route::Token, entra_fault(final_code));
            let e = token(&c).await.unwrap_err();
            assert_eq!(code(&e), Some(final_code));
            assert_eq!(sandbox.count(Route::Token), 1, "{final_code}: no retry");
        }
        // Twice in a row: the retry's rejection is final.
        sandbox.clear_log();
        sandbox.inject_n(Route::Token, entra_fault(1000502), 2);
        assert_eq!(code(&token(&c).await.unwrap_err()), Some(1000502));
        assert_eq!(sandbox.count(Route::Token), 2);
    }

    #[tokio::test]
    async fn rotated_files_are_used_by_the_next_request() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("bot.pem"), dir.path().join("bot.key"));
        copy("rsa2048.pem", &cert);
        copy("rsa2048.key", &key);
        let sandbox = sandbox_with(&["rsa2048.pem"]).await;
        let c = credential(
            &sandbox,
            CertificateAssertion::builder(CertificateSource::pem_files(&cert, &key))
                .build()
                .unwrap(),
        );
        token(&c).await.unwrap();
        // The app's certificate is rotated: Entra knows only the new one, the files are replaced.
        register(&sandbox, &["other2048.pem"]);
        copy("other2048.pem", &cert);
        copy("other2048.key", &key);
        sandbox.clear_log();
        token(&c).await.unwrap();
        assert_eq!(sandbox.count(Route::Token), 1, "no rejected attempt first");
        assert_eq!(c.thumbprints().sha1_hex(), sha1_hex("other2048.pem"));
    }

    #[tokio::test]
    async fn a_rejection_reloads_files_that_were_not_watched() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bot.pfx");
        copy("rsa2048.nopass.pfx", &file);
        let sandbox = sandbox_with(&["other2048.pem"]).await;
        let c = credential(
            &sandbox,
            CertificateAssertion::builder(CertificateSource::file(&file))
                .watch_files(false)
                .build()
                .unwrap(),
        );
        std::fs::write(
            &file,
            [read("other2048.pem"), read("other2048.key")].concat(),
        )
        .unwrap();
        token(&c).await.unwrap();
        assert_eq!(
            sandbox.count(Route::Token),
            2,
            "700027 with the old certificate, reload, retry with the new one"
        );
        assert_eq!(c.thumbprints().sha1_hex(), sha1_hex("other2048.pem"));
    }

    #[tokio::test]
    async fn from_config_in_the_agents_dialect() {
        let sandbox = sandbox_with(&["rsa2048.pem"]).await;
        let p = |n: &str| path(n).to_string_lossy().into_owned();
        let prefix = "Connections__ServiceConnection__Settings__";
        let vars = [
            ("AuthType", "Certificate".to_owned()),
            ("ClientId", APP.to_owned()),
            ("TenantId", TENANT.to_owned()),
            ("CertPemFile", p("rsa2048.pem")),
            ("CertKeyFile", p("rsa2048.pkcs1.key")),
        ]
        .into_iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v))
        .chain([("BOTAUTH_AUTHORITY_HOST".to_owned(), sandbox.url())]);
        let config = BotAuthConfig::from_vars(vars).unwrap();
        let c = CertificateCredential::from_entry(&config, &config.credentials[0]).unwrap();
        token(&c).await.unwrap();
    }
}
