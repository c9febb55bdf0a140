//! The vault's operations on the sandbox's state: creating a version, reading a certificate's
//! versions, the vault's URL.

use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::store::{
    BACKDATE, Certificate, KeyVaultCertificateOptions, KeyVaultVersion, VALIDITY, Version,
    generate, unix, valid_name, x509_name,
};
use crate::state::Shared;

/// Creates a certificate, or a new version of it. The key is generated without the lock held.
pub(crate) fn create(
    shared: &Shared,
    name: &str,
    options: &KeyVaultCertificateOptions,
) -> Result<KeyVaultVersion, String> {
    if !valid_name(name) {
        return Err(format!(
            "'{name}' is not a Key Vault certificate name (1 to 127 letters, digits and '-')"
        ));
    }
    let now = shared.lock().mi.now();
    let not_before = options
        .not_before
        .unwrap_or_else(|| now.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH));
    let nbf = unix(not_before);
    let exp = options
        .not_after
        .map_or_else(|| unix(not_before + VALIDITY), unix);
    let subject = options
        .subject
        .clone()
        .unwrap_or_else(|| format!("CN={name}"));
    let (key, cert) = generate(&x509_name(&subject)?, nbf, exp).map_err(|e| e.to_string())?;
    let der = cert.to_der().map_err(|e| e.to_string())?;

    let mut inner = shared.lock();
    let now = unix(inner.mi.now());
    let certificate = inner
        .key_vault
        .certificates
        .entry(name.to_ascii_lowercase())
        .or_insert_with(|| Certificate {
            name: name.to_owned(),
            versions: Vec::new(),
        });
    // Clients pick the newest version by `created` (any list order is legal in Key Vault):
    // a version made in the same second as the last one, or after the sandbox clock went back,
    // still has to be newer.
    let created = certificate
        .versions
        .last()
        .map_or(now, |last| now.max(last.created.saturating_add(1)));
    let version = Version {
        id: uuid::Uuid::new_v4().simple().to_string(),
        key,
        cert,
        der,
        subject,
        content_type: options.content_type,
        exportable: options.exportable,
        enabled: options.enabled,
        nbf,
        exp,
        created,
        updated: created,
    };
    let public = version.public(&certificate.name);
    certificate.versions.push(Arc::new(version));
    Ok(public)
}

/// The certificate's name as created and its versions, oldest first.
pub(super) fn snapshot(shared: &Shared, name: &str) -> Option<(String, Vec<Arc<Version>>)> {
    let inner = shared.lock();
    inner
        .key_vault
        .certificates
        .get(&name.to_ascii_lowercase())
        .map(|c| (c.name.clone(), c.versions.clone()))
}

/// The vault sits at the root of the sandbox's origin, as a real vault does: the Azure SDKs
/// parse ids as `/{collection}/{name}[/{version}]` and refuse a vault below a path.
pub(super) fn base(shared: &Shared) -> String {
    shared.url.trim_end_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use openssl::asn1::Asn1Time;
    use openssl::x509::X509;

    use super::*;
    use crate::Sandbox;

    #[test]
    fn names_follow_key_vault() {
        assert!(valid_name("bot-cert-2"));
        assert!(valid_name(&"a".repeat(127)));
        for bad in ["", "a_b", "a.b", "a b", "é", &"a".repeat(128)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn subjects_are_parsed_in_order() {
        let name = x509_name("CN=bot.contoso.com, O=Contoso").unwrap();
        let entries: Vec<String> = name
            .entries()
            .map(|e| e.data().to_string().unwrap())
            .collect();
        assert_eq!(entries, ["bot.contoso.com", "Contoso"]);
        for bad in ["", "CN", "CN=", "=x", "NOPE=x"] {
            assert!(x509_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn versions_created_in_one_second_still_sort_in_creation_order() {
        let sandbox = Sandbox::start().await.unwrap();
        let fixed = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        sandbox.set_clock(move || fixed);
        let options = KeyVaultCertificateOptions::default;
        let a = sandbox.create_key_vault_certificate("bot", options());
        let b = sandbox.create_key_vault_certificate("BOT", options().enabled(false));
        assert_eq!(b.name, "bot", "names are case-insensitive");
        assert_eq!(unix(a.created), 1_700_000_000);
        assert_eq!(unix(b.created), 1_700_000_001);
        assert_eq!(unix(a.not_before), 1_700_000_000 - 60);
        assert_eq!(unix(a.not_after), unix(a.not_before) + 365 * 86_400);
        let cert = X509::from_der(&a.certificate_der).unwrap();
        assert_eq!(
            cert.not_before()
                .compare(&Asn1Time::from_unix(1_700_000_000 - 60).unwrap())
                .unwrap(),
            std::cmp::Ordering::Equal
        );
        assert_eq!(a.version.len(), 32);
        assert!(
            a.version
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        assert_eq!(a.sha1_thumbprint.len(), 40);
        let listed = sandbox.key_vault_versions("Bot");
        assert_eq!(
            listed.iter().map(|v| &v.version).collect::<Vec<_>>(),
            [&a.version, &b.version]
        );
        assert!(!listed[1].enabled);
        assert!(sandbox.set_key_vault_version_enabled("bot", &b.version.to_uppercase(), true));
        assert!(sandbox.key_vault_versions("bot")[1].enabled);
        assert!(!sandbox.set_key_vault_version_enabled("bot", "0123", true));
        assert!(!sandbox.set_key_vault_version_enabled("nope", &a.version, true));
        assert!(sandbox.key_vault_versions("nope").is_empty());
    }

    #[tokio::test]
    async fn default_validity_is_a_year_from_a_minute_ago() {
        let sandbox = Sandbox::start().await.unwrap();
        let made = sandbox.create_key_vault_certificate(
            "other",
            KeyVaultCertificateOptions::default().subject("CN=bot.contoso.com, O=Contoso"),
        );
        let nbf = made
            .not_before
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let unix_now = || crate::clock::unix_now().unsigned_abs();
        assert!((unix_now() - 62..=unix_now() - 58).contains(&nbf), "{nbf}");
        assert_eq!(
            made.not_after.duration_since(made.not_before).unwrap(),
            Duration::from_secs(365 * 86_400)
        );
    }

    #[tokio::test]
    #[should_panic(expected = "not a Key Vault certificate name")]
    async fn invalid_names_panic() {
        let sandbox = Sandbox::start().await.unwrap();
        sandbox.create_key_vault_certificate("a_b", KeyVaultCertificateOptions::default());
    }
}
