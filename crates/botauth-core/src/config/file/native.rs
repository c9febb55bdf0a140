//! botauth's native format: TOML or JSON deserialized straight into the model, with parse errors
//! that name the line and column and never quote the file.

use serde_json::Value;

use crate::config::model::BotAuthConfig;
use crate::config::validate::{KeyNames, validate};
use crate::{Error, Result};

const CREDENTIAL_TYPES: [&str; 6] = [
    "client_secret",
    "certificate",
    "managed_identity",
    "federated_managed_identity",
    "workload_identity",
    "custom",
];

pub(crate) fn native_toml(text: &str, origin: &str) -> Result<BotAuthConfig> {
    let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(&e, text, origin))?;
    let value = serde_json::to_value(&table).map_err(|_| {
        Error::config(
            origin,
            "the TOML document cannot be read as a configuration",
        )
    })?;
    check_credential_types(&value)?;
    let config: BotAuthConfig = toml::from_str(text).map_err(|e| toml_error(&e, text, origin))?;
    finish_native(config)
}

pub(crate) fn native_json(text: &str, origin: &str) -> Result<BotAuthConfig> {
    let value: Value = serde_json::from_str(text).map_err(|e| json_error(&e, origin))?;
    check_credential_types(&value)?;
    let config: BotAuthConfig = serde_json::from_str(text).map_err(|e| json_error(&e, origin))?;
    finish_native(config)
}

pub(super) fn finish_native(config: BotAuthConfig) -> Result<BotAuthConfig> {
    validate(&config, &KeyNames::native())?;
    tracing::debug!(
        dialect = %config.dialect,
        credentials = ?config.credentials.iter().map(|c| c.type_name()).collect::<Vec<_>>(),
        "botauth: configuration read"
    );
    Ok(config)
}

/// Names `credentials[i].type` for a missing or unknown credential type, which serde alone reports
/// without a path.
pub(super) fn check_credential_types(value: &Value) -> Result<()> {
    let Some(credentials) = value.get("credentials").and_then(Value::as_array) else {
        return Ok(());
    };
    let valid = CREDENTIAL_TYPES.join(", ");
    for (i, credential) in credentials.iter().enumerate() {
        if !credential.is_object() {
            continue; // serde reports the wrong shape with a position
        }
        let key = format!("credentials[{i}].type");
        match credential.get("type") {
            None => {
                return Err(Error::config(
                    key,
                    format!("is required: the credential's type, one of {valid}"),
                ));
            }
            Some(Value::String(t)) if CREDENTIAL_TYPES.contains(&t.as_str()) => {}
            Some(_) => {
                return Err(Error::config(
                    key,
                    format!("unknown credential type: use one of {valid}"),
                ));
            }
        }
    }
    Ok(())
}

pub(super) fn toml_error(e: &toml::de::Error, text: &str, origin: &str) -> Error {
    // `Display` of a TOML error quotes the offending source line: use only its message and span.
    let position = e
        .span()
        .map(|span| {
            let (line, column) = line_column(text, span.start);
            format!(" at line {line}, column {column}")
        })
        .unwrap_or_default();
    Error::config(
        origin,
        format!(
            "invalid TOML configuration{position}: {}",
            sanitize(e.message())
        ),
    )
}

pub(super) fn json_error(e: &serde_json::Error, origin: &str) -> Error {
    use serde_json::error::Category;
    let category = match e.classify() {
        Category::Syntax => "invalid JSON",
        Category::Eof => "unexpected end of JSON",
        Category::Data => "invalid JSON configuration",
        Category::Io => "cannot read JSON",
    };
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full);
    let position = if e.line() > 0 {
        format!(" at line {}, column {}", e.line(), e.column())
    } else {
        String::new()
    };
    Error::config(
        origin,
        format!("{category}{position}: {}", sanitize(message)),
    )
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Names the model's fields and variants use: the only quoted words a parse error may keep.
pub(super) const MODEL_WORDS: &[&str] = &[
    // BotAuthConfig
    "client_id",
    "tenant_id",
    "cloud",
    "credentials",
    "inbound",
    "allowed_service_urls",
    "token_service_url",
    "scopes",
    "connection_name",
    "connections",
    "connections_map",
    "http_timeout",
    // ConnectionConfig, ConnectionMapEntry
    "service_url",
    "audience",
    "connection",
    // CredentialConfig
    "type",
    "client_secret",
    "certificate",
    "managed_identity",
    "federated_managed_identity",
    "workload_identity",
    "custom",
    "secret",
    "id",
    "token_file",
    "name",
    "settings",
    // CertificateConfig
    "certificate_path",
    "key_path",
    "key_pem",
    "base64_pfx",
    "password",
    "thumbprint",
    "send_x5c",
    "algorithm",
    "RS256",
    "PS256",
    "rs256",
    "ps256",
    // ManagedIdentityId
    "system",
    "object_id",
    "resource_id",
    // InboundConfig
    "bot_service",
    "entra_tenants",
    "emulator",
    "extra_audiences",
    "allowed_callers",
    "skills",
    "strict_endorsements",
    "metadata_url",
    "issuer",
    "emulator_metadata_url",
    "entra_metadata_url",
    "valid_issuers",
    "key_refresh",
    // CloudEndpoints
    "authority_host",
    "bot_connector_scope",
    "bot_service_metadata_url",
    "bot_service_issuer",
    "federation_audience",
];

/// Replaces every quoted word of a serde message (`"…"` or `` `…` ``) that is not one of the
/// model's own names (or a single punctuation character) with `…`, so values never get through.
pub(super) fn sanitize(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find(quote) {
            Some(end) => {
                let word = &after[..end];
                let keep = MODEL_WORDS.contains(&word)
                    || (word.chars().count() == 1
                        && word.chars().all(|c| c.is_ascii_punctuation()));
                out.push(quote);
                out.push_str(if keep { word } else { "…" });
                out.push(quote);
                rest = &after[end + 1..];
            }
            None => {
                out.push(quote);
                out.push('…');
                rest = "";
            }
        }
    }
    out.push_str(rest);
    // One line, bounded: a multi-line message could carry more than serde meant to say.
    let one_line: String = out.lines().collect::<Vec<_>>().join("; ");
    if one_line.chars().count() > 300 {
        let mut cut: String = one_line.chars().take(300).collect();
        cut.push('…');
        cut
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tests::{APP, SECRET, TENANT, key_of, write_file};
    use super::*;
    use crate::config::{CredentialConfig, Dialect, ManagedIdentityId};
    use crate::{Cloud, Secret};

    const NATIVE_TOML: &str = r#"
client_id = "00000000-0000-0000-0000-00000000b07a"
tenant_id = "11111111-2222-3333-4444-555555555555"
cloud = "usgov"
allowed_service_urls = ["https://bots.example"]

[[credentials]]
type = "certificate"
certificate_path = "/certs/bot.pem"
key_path = "/certs/bot.key"
thumbprint = "84E05C1D98BCE3A5421D225B140B36E86A3D5534"
algorithm = "PS256"
send_x5c = true

[[credentials]]
type = "client_secret"
secret = "s3cr3t~Value+/="

[[credentials]]
type = "federated_managed_identity"
id = { client_id = "99999999-8888-7777-6666-555555555555" }

[[credentials]]
type = "workload_identity"
token_file = "/var/run/token"

[inbound]
emulator = true
extra_audiences = ["api://00000000-0000-0000-0000-00000000b07a"]
"#;

    #[test]
    fn native_toml_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, "botauth.toml", NATIVE_TOML);
        let c = BotAuthConfig::from_file(&path).unwrap();
        assert_eq!(c.dialect, Dialect::Native);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(c.cloud, Cloud::UsGov);
        assert_eq!(c.allowed_service_urls, ["https://bots.example"]);
        assert_eq!(c.credentials.len(), 4);
        let CredentialConfig::Certificate(cert) = &c.credentials[0] else {
            panic!("{:?}", c.credentials[0]);
        };
        assert!(cert.send_x5c);
        assert_eq!(cert.key_path.as_deref(), Some(Path::new("/certs/bot.key")));
        assert_eq!(
            c.credentials[1],
            CredentialConfig::ClientSecret {
                secret: Secret::new(SECRET)
            }
        );
        assert_eq!(
            c.credentials[2],
            CredentialConfig::FederatedManagedIdentity {
                id: ManagedIdentityId::ClientId("99999999-8888-7777-6666-555555555555".into())
            }
        );
        assert!(c.inbound.emulator);
        assert!(c.inbound.bot_service);
        assert!(!format!("{c:?}").contains("s3cr3t"));
        assert_eq!(BotAuthConfig::from_toml_str(NATIVE_TOML).unwrap(), c);
    }

    #[test]
    fn native_json_file_with_custom_cloud() {
        let json = r#"{
            "client_id": "00000000-0000-0000-0000-00000000b07a",
            "tenant_id": "contoso.onmicrosoft.com",
            "cloud": {
                "authority_host": "http://127.0.0.1:8400",
                "bot_connector_scope": "https://api.botframework.com/.default",
                "bot_service_metadata_url": "http://127.0.0.1:8400/v1/.well-known/openidconfiguration",
                "bot_service_issuer": "https://api.botframework.com",
                "federation_audience": "api://AzureADTokenExchange"
            },
            "credentials": [{"type": "client_secret", "secret": "s3cr3t~Value+/="},
                            {"type": "managed_identity"}]
        }"#;
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, "botauth.JSON", json);
        let c = BotAuthConfig::from_file(&path).unwrap();
        assert_eq!(c.dialect, Dialect::Native);
        assert_eq!(c.cloud.authority_host(), "http://127.0.0.1:8400");
        assert_eq!(
            c.credentials[1],
            CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::System
            }
        );
        assert_eq!(BotAuthConfig::from_json_str(json).unwrap(), c);
    }

    #[test]
    fn native_validation_keys() {
        let cases = [
            (
                r#"tenant_id = "t.example"
                [[credentials]]
                type = "client_secret"
                secret = "x""#,
                "client_id",
            ),
            (
                r#"client_id = "a"
                [[credentials]]
                type = "client_secret"
                secret = "x""#,
                "tenant_id",
            ),
            (
                r#"client_id = "a"
                tenant_id = "not/a/tenant"
                [[credentials]]
                type = "client_secret"
                secret = "x""#,
                "tenant_id",
            ),
            (
                r#"client_id = "a"
                tenant_id = "t.example""#,
                "credentials",
            ),
            (
                r#"client_id = "a"
                tenant_id = "t.example"
                [[credentials]]
                type = "client_secret"
                secret = """#,
                "credentials[0].secret",
            ),
            (
                r#"client_id = "a"
                tenant_id = "t.example"
                [[credentials]]
                type = "managed_identity"
                [[credentials]]
                type = "key_vault"
                vault = "x""#,
                "credentials[1].type",
            ),
            (
                r#"client_id = "a"
                tenant_id = "t.example"
                [[credentials]]
                secret = "x""#,
                "credentials[0].type",
            ),
            (
                r#"client_id = "a"
                tenant_id = "t.example"
                cloud = { authority_host = "http://login.example", bot_connector_scope = "s", bot_service_metadata_url = "https://m", bot_service_issuer = "i", federation_audience = "f" }
                [[credentials]]
                type = "client_secret"
                secret = "x""#,
                "cloud.authority_host",
            ),
        ];
        for (toml, key) in cases {
            assert_eq!(key_of(BotAuthConfig::from_toml_str(toml)), key, "{toml}");
        }
    }

    #[test]
    fn unknown_credential_type_lists_the_valid_ones() {
        let json = r#"{"client_id":"a","tenant_id":"t","credentials":[{"type":"KeyVault"}]}"#;
        let e = BotAuthConfig::from_json_str(json).unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. } if key == "credentials[0].type"));
        let msg = e.to_string();
        for t in CREDENTIAL_TYPES {
            assert!(msg.contains(t), "{msg}");
        }
    }

    #[test]
    fn unknown_fields_are_rejected_in_native_files() {
        let e =
            BotAuthConfig::from_toml_str("client_id = \"a\"\nclient_secret = \"x\"\n").unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. } if key == "<toml>"));
        let msg = e.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("`client_secret`"), "{msg}");
    }

    #[test]
    fn parse_errors_do_not_leak_secrets() {
        let leaky_toml = [
            // Unterminated string: TOML's Display would print the whole source line.
            "client_id = \"a\"\nsecret_line = \"s3cr3t~Value+/=\n",
            // A secret where a boolean belongs: serde says `invalid type: string "…"`.
            "client_id = \"a\"\n[[credentials]]\ntype = \"certificate\"\nsend_x5c = \"s3cr3t~Value+/=\"\n",
            // A secret as a key.
            "client_id = \"a\"\n\"s3cr3t~Value+/=\" = 1\n",
            // A secret as the cloud name.
            "client_id = \"a\"\ncloud = \"s3cr3t~Value+/=\"\n",
            // A secret as a managed identity variant.
            "client_id = \"a\"\n[[credentials]]\ntype = \"managed_identity\"\nid = \"s3cr3t~Value+/=\"\n",
            // A secret as a credential type.
            "client_id = \"a\"\n[[credentials]]\ntype = \"s3cr3t~Value+/=\"\n",
        ];
        for toml in leaky_toml {
            let e = BotAuthConfig::from_toml_str(toml).unwrap_err();
            let msg = e.to_string();
            assert!(e.is_config(), "{msg}");
            assert!(!msg.contains("s3cr3t"), "{msg}");
            assert!(!format!("{e:?}").contains("s3cr3t"), "{e:?}");
        }
        let leaky_json = [
            "{\"client_id\": \"a\",\n \"credentials\": [{\"type\": \"certificate\", \"send_x5c\": \"s3cr3t~Value+/=\"}]}",
            "{\"client_id\": \"a\", \"s3cr3t~Value+/=\": 1}",
            "{\"client_id\": \"a\", \"credentials\": [{\"type\": \"client_secret\", \"secret\": \"s3cr3t~Value+/=\" ",
            "{\"client_id\": \"a\", \"credentials\": [{\"type\": \"client_secret\", \"secret\": \"s3cr3t~Value+/=\" x}]}",
            "{\"client_id\": \"a\", \"cloud\": \"s3cr3t~Value+/=\"}",
            "{\"client_id\": \"a\", \"credentials\": [{\"type\": \"managed_identity\", \"id\": {\"s3cr3t~Value+/=\": \"x\"}}]}",
        ];
        for json in leaky_json {
            let e = BotAuthConfig::from_json_str(json).unwrap_err();
            let msg = e.to_string();
            assert!(e.is_config(), "{msg}");
            assert!(!msg.contains("s3cr3t"), "{msg}");
        }
    }

    #[test]
    fn parse_errors_have_positions() {
        let e = BotAuthConfig::from_toml_str("client_id = \"a\"\n\nsecret = \"abc\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        let e = BotAuthConfig::from_json_str("{\n  \"client_id\": \"a\",\n  \"send_x5c\" true\n}")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("line 3, column"), "{msg}");
        assert!(matches!(e, Error::Config { ref key, .. } if key == "<json>"));
    }

    #[test]
    fn sanitize_keeps_model_words_only() {
        assert_eq!(
            sanitize("unknown field `clientid`, expected one of `client_id`, `tenant_id`"),
            "unknown field `…`, expected one of `client_id`, `tenant_id`"
        );
        assert_eq!(
            sanitize("invalid type: string \"hunter2\", expected a boolean"),
            "invalid type: string \"…\", expected a boolean"
        );
        assert_eq!(sanitize("expected `,` or `}`"), "expected `,` or `}`");
        assert_eq!(sanitize("unterminated \"hunter2"), "unterminated \"…");
        assert_eq!(sanitize("a\nb"), "a; b");
    }

    #[test]
    fn line_columns() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("é\nx", 1), (1, 1));
        assert_eq!(line_column("x", 99), (1, 2));
    }
}
