//! The Key Vault part of the [`Sandbox`] handle.

use super::store::{KeyVaultCertificateOptions, KeyVaultVersion};
use super::vault::{base, create, snapshot};
use crate::sandbox::Sandbox;

impl Sandbox {
    /// The vault's URL (`KeyVaultUrl`): the sandbox's own URL, without a trailing slash, since the
    /// vault's routes sit at the root of the origin (`{vault}/certificates/{name}/{version}`).
    /// Over the TLS listener it is that listener's `https` URL: ids name the vault as the
    /// client reached it.
    pub fn key_vault_url(&self) -> String {
        base(&self.shared)
    }

    /// Creates the certificate `name` with a fresh RSA-2048 key and a self-signed certificate, or,
    /// when it exists, adds a new version (a rotation: `GET certificates/{name}` answers it from
    /// now on). Blocks for the ~100 ms key generation takes.
    ///
    /// # Panics
    ///
    /// When `name` is not 1 to 127 ASCII letters, digits and `-` (Key Vault's rule), or
    /// `options.subject` is not `K=V[, K=V…]` with attribute names OpenSSL knows.
    pub fn create_key_vault_certificate(
        &self,
        name: &str,
        options: KeyVaultCertificateOptions,
    ) -> KeyVaultVersion {
        create(&self.shared, name, &options)
            .unwrap_or_else(|error| panic!("create_key_vault_certificate: {error}"))
    }

    /// Enables or disables a version (a disabled version's secret answers 403 `SecretDisabled`;
    /// the certificate still reads, with `enabled: false`). `false` when there is no such
    /// certificate or version.
    #[cfg(test)]
    pub(crate) fn set_key_vault_version_enabled(
        &self,
        name: &str,
        version: &str,
        enabled: bool,
    ) -> bool {
        let mut inner = self.shared.lock();
        let now = super::store::unix(inner.mi.now());
        let found = inner
            .key_vault
            .certificates
            .get_mut(&name.to_ascii_lowercase())
            .and_then(|c| {
                c.versions
                    .iter_mut()
                    .find(|v| v.id.eq_ignore_ascii_case(version))
            });
        match found {
            Some(v) => {
                let v = std::sync::Arc::make_mut(v);
                v.enabled = enabled;
                v.updated = now.max(v.created);
                true
            }
            None => false,
        }
    }

    /// The versions of certificate `name`, oldest first (empty when there is none).
    pub fn key_vault_versions(&self, name: &str) -> Vec<KeyVaultVersion> {
        snapshot(&self.shared, name)
            .map(|(name, versions)| versions.iter().map(|v| v.public(&name)).collect())
            .unwrap_or_default()
    }

    /// Who may read the vault: `None` (the default) lets every valid token read; `Some(ids)` only
    /// tokens whose `oid`, `appid`, `azp` or `xms_mirid` is one of `ids` (case-insensitive), so a
    /// managed identity is named by its object, client or resource id and an app by its client
    /// id. Others answer 403 `ForbiddenByRbac`.
    pub fn set_key_vault_access(&self, allowed: Option<Vec<String>>) {
        self.shared.lock().key_vault.allowed = allowed;
    }
}
