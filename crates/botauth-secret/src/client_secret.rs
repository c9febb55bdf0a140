//! [`ClientSecretCredential`].

use async_trait::async_trait;
use botauth_core::{
    AccessToken, BotAuthConfig, Cloud, CredentialConfig, CredentialInfo, CredentialProvider, Error,
    Result, Secret, TokenRequest,
};
use botauth_http::ClientSettings;
use botauth_token::{ClientAuth, ClientCredentialsClient, ClientCredentialsClientBuilder};

/// A client-secret credential: Entra ID's client-credentials grant with `client_secret`.
#[derive(Debug)]
pub struct ClientSecretCredential {
    client: ClientCredentialsClient,
}

/// Builds a [`ClientSecretCredential`]: the client-credentials client's builder plus the
/// secret checks.
#[derive(Debug)]
pub struct ClientSecretCredentialBuilder {
    secret: Secret,
    client: ClientCredentialsClientBuilder,
}

impl ClientSecretCredentialBuilder {
    /// The shared settings ([`ClientSettings`]): authority host or cloud, HTTP client and limits,
    /// and the clock for expiry times.
    pub fn settings(mut self, settings: ClientSettings) -> Self {
        self.client = self.client.settings(settings);
        self
    }

    /// Checks the values and builds the credential. The client builder validates the tenant and
    /// the authority; this adds the secret checks.
    pub fn build(self) -> Result<ClientSecretCredential> {
        check_secret(&self.secret, "client_secret")?;
        Ok(ClientSecretCredential {
            client: self.client.build()?,
        })
    }
}

/// Catches the two classic mistakes before any request is made.
fn check_secret(secret: &Secret, key: &str) -> Result<()> {
    let value = secret.expose_secret();
    if value.trim().is_empty() {
        return Err(Error::config(key, "the client secret is empty"));
    }
    if value.trim() != value {
        return Err(Error::config(
            key,
            "the client secret has leading or trailing white space: copy the value again",
        ));
    }
    if is_guid(value) {
        return Err(Error::config(
            key,
            "this looks like the secret's ID (a GUID), not its value: in the app registration's \
             Certificates & secrets page, copy the Value column (shown only when the secret is created)",
        ));
    }
    Ok(())
}

fn is_guid(s: &str) -> bool {
    let s = s.trim_start_matches('{').trim_end_matches('}');
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl ClientSecretCredential {
    /// A builder for app `client_id` in `tenant_id` with `secret`, on the public cloud.
    pub fn builder(
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        secret: Secret,
    ) -> ClientSecretCredentialBuilder {
        ClientSecretCredentialBuilder {
            client: ClientCredentialsClient::builder(
                Cloud::Public.authority_host(),
                tenant_id,
                client_id,
                ClientAuth::Secret(secret.clone()),
            ),
            secret,
        }
    }

    /// The credential described by the first `client_secret` entry of `config`.
    pub fn from_config(config: &BotAuthConfig) -> Result<Self> {
        let secret = config
            .credentials
            .iter()
            .find_map(|c| match c {
                CredentialConfig::ClientSecret { secret } => Some(secret.clone()),
                _ => None,
            })
            .ok_or_else(|| Error::config("credentials", "no client secret is configured"))?;
        Self::from_parts(config, secret)
    }

    /// The credential for `config`'s client id, tenant and cloud with `secret`.
    pub fn from_parts(config: &BotAuthConfig, secret: Secret) -> Result<Self> {
        let client_id = config.require_client_id("client_id")?;
        let tenant_id = config.require_tenant_id("tenant_id")?;
        Self::builder(tenant_id, client_id, secret)
            .settings(ClientSettings::from_config(config))
            .build()
    }

    /// The token endpoint this credential posts to.
    pub fn token_endpoint(&self) -> String {
        self.client.token_endpoint(None)
    }
}

#[async_trait]
impl CredentialProvider for ClientSecretCredential {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        self.client.request_token(request).await
    }

    fn describe(&self) -> CredentialInfo {
        self.client.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::ErrorKind;

    const TENANT: &str = "11111111-2222-3333-4444-555555555555";
    const APP: &str = "00000000-0000-0000-0000-00000000b07a";

    fn build(tenant: &str, secret: &str) -> Result<ClientSecretCredential> {
        ClientSecretCredential::builder(tenant, APP, Secret::new(secret)).build()
    }

    fn config_key(e: &Error) -> &str {
        match e {
            Error::Config { key, .. } => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn empty_secret_is_caught() {
        let e = build(TENANT, "").unwrap_err();
        assert_eq!(config_key(&e), "client_secret");
        assert!(e.to_string().contains("empty"));
        let e = build(TENANT, "   ").unwrap_err();
        assert_eq!(config_key(&e), "client_secret");
    }

    #[test]
    fn a_secret_id_is_caught() {
        for id in [
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
            "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}",
        ] {
            let e = build(TENANT, id).unwrap_err();
            assert_eq!(config_key(&e), "client_secret");
            assert!(e.to_string().contains("secret's ID"), "{e}");
            assert!(
                !e.to_string().contains(id),
                "the message must not echo the value"
            );
        }
    }

    #[test]
    fn padded_secret_is_caught() {
        let e = build(TENANT, " abc~def ").unwrap_err();
        assert!(e.to_string().contains("white space"));
    }

    #[test]
    fn bad_tenant_is_caught() {
        for t in ["", "contoso.com/../x", "a b", "tenant?x=1"] {
            let e = build(t, "abc~def").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{t}");
            assert_eq!(config_key(&e), "tenant_id");
        }
        // The message says what is wrong without echoing the value.
        let e = build("s3cret~pasted/here", "abc~def").unwrap_err();
        assert!(e.to_string().contains("it contains `~`"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }

    #[test]
    fn http_authority_is_refused_off_loopback() {
        let e = ClientSecretCredential::builder(TENANT, APP, Secret::new("abc~def"))
            .settings(
                botauth_http::ClientSettings::new()
                    .authority_host("http://login.microsoftonline.com"),
            )
            .build()
            .unwrap_err();
        assert_eq!(config_key(&e), "authority_host");
    }

    #[test]
    fn describes_itself_without_the_secret() {
        let c = build(TENANT, "abc~def").unwrap();
        let info = c.describe();
        assert_eq!(info.kind, "client_secret");
        assert_eq!(info.client_id.as_deref(), Some(APP));
        assert_eq!(info.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(
            c.token_endpoint(),
            format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
        );
        assert!(!format!("{c:?}").contains("abc~def"));
    }

    #[test]
    fn national_clouds() {
        let c = ClientSecretCredential::builder(TENANT, APP, Secret::new("abc~def"))
            .settings(botauth_http::ClientSettings::new().cloud(&Cloud::UsGov))
            .build()
            .unwrap();
        assert!(
            c.token_endpoint()
                .starts_with("https://login.microsoftonline.us/")
        );
    }
}
