//! App registrations: the client ids the token endpoint knows and the credentials they accept.

/// An app registration in the sandbox's directory.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AppRegistration {
    /// Application (client) id.
    pub client_id: String,
    /// The tenant the app lives in; token requests for other tenants answer AADSTS700016.
    pub tenant_id: String,
    /// Accepted client secret values.
    pub secrets: Vec<String>,
    /// Registered certificates (DER X.509) for client assertions.
    pub certificates: Vec<Vec<u8>>,
    /// Federated identity credentials.
    pub federated: Vec<FederatedCredential>,
}

impl AppRegistration {
    /// An app with no credentials yet.
    pub fn new(client_id: impl Into<String>, tenant_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            tenant_id: tenant_id.into(),
            ..Self::default()
        }
    }

    /// Adds an accepted client secret.
    #[must_use]
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Adds a certificate (DER X.509) whose key may sign client assertions.
    #[must_use]
    pub fn with_certificate_der(mut self, der: impl Into<Vec<u8>>) -> Self {
        self.certificates.push(der.into());
        self
    }

    /// Adds a federated identity credential.
    #[must_use]
    pub fn with_federated(mut self, credential: FederatedCredential) -> Self {
        self.federated.push(credential);
        self
    }
}

impl std::fmt::Debug for AppRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRegistration")
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("certificates", &self.certificates.len())
            .field("federated", &self.federated)
            .finish()
    }
}

/// A federated identity credential: assertions with this issuer, subject and audience are accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FederatedCredential {
    /// Expected `iss` of the assertion.
    pub issuer: String,
    /// Expected `sub` of the assertion.
    pub subject: String,
    /// Expected `aud` of the assertion (e.g. `api://AzureADTokenExchange`).
    pub audience: String,
}

impl FederatedCredential {
    /// A credential for `issuer` / `subject` / `audience`.
    pub fn new(
        issuer: impl Into<String>,
        subject: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            issuer: issuer.into(),
            subject: subject.into(),
            audience: audience.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let app = AppRegistration::new("id", "tenant").with_secret("hunter2");
        let debug = format!("{app:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("1 redacted"), "{debug}");
    }
}
