//! The dialect reader (docs/protocol.md §7): one walk over the tables of `tables.rs` for botas,
//! Bot Framework, Microsoft.Identity.Web, the Microsoft 365 Agents SDK and Azure workload
//! identity, producing [`BotAuthConfig`], the warnings about keys it did not use, and where each
//! value came from.

use std::path::PathBuf;

use super::model::{
    BotAuthConfig, CertificateConfig, ConnectionConfig, ConnectionMapEntry, CredentialConfig,
    Dialect, KeyVaultCertificateConfig, ManagedIdentityId, parse_duration,
};
use super::tables::{
    AGENTS_AUTH_TYPES, AGENTS_CLIENT_FACTORY, AGENTS_CONNECTION, AGENTS_MAP,
    AGENTS_TOKEN_VALIDATION, BOT_FRAMEWORK, BOT_FRAMEWORK_APP_TYPES, BOTAS, BOTAUTH, Choice,
    IDENTITY_WEB, IDENTITY_WEB_CREDENTIAL, IDENTITY_WEB_SOURCE_TYPES, Kind, Row, Section, To,
    WORKLOAD_IDENTITY, names,
};
use super::validate::{KeyNames, check_tenant, rekey, validate};
use super::vars::{EnvVars, Origin, normalize_key};
use crate::endpoint::{check_endpoint_url, known_cloud, parse_endpoint_url};
use crate::{Cloud, Error, Result, Secret};

/// The error when no dialect's keys are present.
pub(crate) fn no_configuration() -> Error {
    Error::config(
        "CLIENT_ID",
        "no botauth configuration found in the environment: set CLIENT_ID/CLIENT_SECRET/TENANT_ID (botas), \
         MicrosoftAppId/… (Bot Framework), AzureAd__… (Microsoft.Identity.Web) or \
         Connections__ServiceConnection__Settings__… (Agents SDK)",
    )
}

/// The keys whose presence makes a dialect "configured", highest precedence first.
const DETECTION: [(Dialect, &[&str]); 4] = [
    (Dialect::AgentsSdk, &["Connections__"]),
    (Dialect::IdentityWeb, &["AzureAd__"]),
    (
        Dialect::BotFramework,
        &[
            "MicrosoftAppId",
            "MicrosoftAppPassword",
            "MicrosoftAppType",
            "MicrosoftAppTenantId",
        ],
    ),
    (
        Dialect::Botas,
        &[
            "CLIENT_ID",
            "CLIENT_SECRET",
            "TENANT_ID",
            "MANAGED_IDENTITY_CLIENT_ID",
        ],
    ),
];

/// The dialects `env` configures, by precedence (see [`BotAuthConfig::from_vars`]).
fn present(env: &EnvVars) -> Vec<Dialect> {
    let mut found: Vec<Dialect> = DETECTION
        .iter()
        .filter(|(dialect, keys)| {
            keys.iter().any(|k| match dialect {
                Dialect::Botas => env.contains(k),
                _ if k.ends_with("__") => !env.with_prefix_ci(k).is_empty(),
                _ => env.get_ci(k).is_some(),
            })
        })
        .map(|(d, _)| *d)
        .collect();
    if env.contains("AZURE_FEDERATED_TOKEN_FILE") && env.contains("AZURE_CLIENT_ID") {
        found.push(Dialect::WorkloadIdentity);
    }
    found
}

/// Which dialect `env` speaks, by the precedence documented on [`BotAuthConfig::from_vars`].
pub(crate) fn detect(env: &EnvVars) -> Option<Dialect> {
    present(env).first().copied()
}

/// Where one setting of the model came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Provenance {
    /// The model's setting (`client_id`, `credentials[0]`, `inbound.metadata_url`, …).
    pub setting: String,
    /// The key as it is spelled where it was found.
    pub key: String,
    /// Where it was found.
    pub origin: Origin,
}

/// A configuration with the story of how it was read: see [`BotAuthConfig::explain_vars`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Explained {
    /// The configuration.
    pub config: BotAuthConfig,
    /// For each key that set something, what it set and where it came from.
    pub sources: Vec<Provenance>,
    /// Keys that were not used, and notes (also logged at WARN and INFO when read).
    pub warnings: Vec<String>,
    /// Notes that need no action (two dialects that agree).
    pub notes: Vec<String>,
}

/// Reads `env` in `dialect` (or the detected one), applies the generic `BOTAUTH_*` overrides and
/// validates the result.
pub(crate) fn read_env(dialect: Option<Dialect>, env: &EnvVars) -> Result<BotAuthConfig> {
    let explained = explain(dialect, env)?;
    for warning in &explained.warnings {
        tracing::warn!("botauth: {warning}");
    }
    for note in &explained.notes {
        tracing::info!("botauth: {note}");
    }
    Ok(explained.config)
}

/// The reader: detection, the dialect's sections, the overrides, validation.
pub(crate) fn explain(dialect: Option<Dialect>, env: &EnvVars) -> Result<Explained> {
    let mut r = Reader {
        env,
        warnings: Vec::new(),
        notes: Vec::new(),
        sources: Vec::new(),
    };
    let dialect = match dialect {
        Some(Dialect::Native) => {
            return Err(Error::config(
                "dialect",
                "botauth's native format is a file, not environment variables: use \
                 BotAuthConfig::from_file, from_toml_str or from_json_str",
            ));
        }
        Some(d) => d,
        None => {
            let found = present(env);
            r.check_agreement(&found)?;
            match found.first() {
                Some(d) => *d,
                None => return Err(r.empty_app_id().unwrap_or_else(no_configuration)),
            }
        }
    };
    tracing::debug!(%dialect, "botauth: reading configuration");
    let mut draft = match dialect {
        Dialect::Botas => r.botas()?,
        Dialect::BotFramework => r.bot_framework()?,
        Dialect::IdentityWeb => r.identity_web()?,
        Dialect::AgentsSdk => r.agents()?,
        _ => r.workload_identity()?,
    };
    r.overrides(&mut draft)?;
    validate(&draft.config, &draft.keys)?;
    for (i, connection) in draft.config.connections.iter().enumerate() {
        let keys = &draft.connection_keys[i];
        let mut as_config = BotAuthConfig::new(dialect);
        as_config.client_id.clone_from(&connection.client_id);
        as_config.tenant_id.clone_from(&connection.tenant_id);
        as_config.credentials.clone_from(&connection.credentials);
        validate(&as_config, keys)?;
    }
    tracing::debug!(
        dialect = %draft.config.dialect,
        credentials = ?draft.config.credentials.iter().map(CredentialConfig::type_name).collect::<Vec<_>>(),
        "botauth: configuration read"
    );
    Ok(Explained {
        config: draft.config,
        sources: r.sources,
        warnings: r.warnings,
        notes: r.notes,
    })
}

/// Applies the `BOTAUTH_*` overrides of `env` to a configuration read from a botauth file.
pub(crate) fn apply_overrides(config: &mut BotAuthConfig, env: &EnvVars) -> Result<Vec<String>> {
    let mut r = Reader {
        env,
        warnings: Vec::new(),
        notes: Vec::new(),
        sources: Vec::new(),
    };
    let mut draft = Draft::new(std::mem::replace(
        config,
        BotAuthConfig::new(Dialect::Native),
    ));
    draft.keys = KeyNames::native();
    let result = r.overrides(&mut draft);
    *config = draft.config;
    result?;
    validate(config, &KeyNames::native())?;
    Ok(r.warnings)
}

/// A dialect's result before the generic overrides and the common validation.
#[derive(Debug)]
struct Draft {
    /// The configuration, with `cloud` set to the dialect's base cloud.
    config: BotAuthConfig,
    /// A custom authority host given by the dialect (already checked).
    authority: Option<String>,
    /// The dialect's key names for [`validate`].
    keys: KeyNames,
    /// Key names of each of `config.connections`.
    connection_keys: Vec<KeyNames>,
}

impl Draft {
    fn new(config: BotAuthConfig) -> Self {
        Draft {
            config,
            authority: None,
            keys: KeyNames::native(),
            connection_keys: Vec::new(),
        }
    }
}

/// A section's values: which row each key matched, as spelled, with its value.
struct Fields<'e> {
    section: &'static Section,
    /// The section's prefix with its `{name}`/`{n}` filled in, in environment spelling.
    prefix: String,
    found: Vec<Found<'e>>,
}

struct Found<'e> {
    row: &'static Row,
    /// The list index of an indexed element (`Audiences__0`).
    index: Option<u64>,
    key: &'e str,
    value: &'e str,
}

impl<'e> Fields<'e> {
    /// The value for `to`: the key's canonical spelling wins over its legacy aliases (`OAuthUrl`
    /// over `OAuthApiEndpoint`), as in the SDKs.
    fn find(&self, to: To) -> Option<&Found<'e>> {
        let mut candidates = self
            .found
            .iter()
            .filter(|f| f.row.to == to && f.index.is_none());
        let first = candidates.next()?;
        let canonical = |f: &Found<'_>| normalize_key(f.key).ends_with(&normalize_key(f.row.key));
        if canonical(first) {
            return Some(first);
        }
        Some(candidates.find(|f| canonical(f)).unwrap_or(first))
    }

    fn get(&self, to: To) -> Option<&'e str> {
        self.find(to).map(|f| f.value)
    }

    fn has(&self, to: To) -> bool {
        self.found.iter().any(|f| f.row.to == to)
    }

    /// The key for `to` as spelled, or the canonical spelling when absent.
    fn key(&self, to: To) -> String {
        self.find(to).map_or_else(
            || {
                let row = self.section.rows.iter().find(|r| r.to == to);
                format!("{}{}", self.prefix, row.map_or("", |r| r.key))
            },
            |f| f.key.to_owned(),
        )
    }

    fn require(&self, to: To, why: &str) -> Result<&'e str> {
        self.get(to)
            .ok_or_else(|| Error::config(self.key(to), format!("is required{why}: {}", to.what())))
    }

    /// A list: the comma/space-separated value of the key itself, then its indexed elements.
    fn list(&self, to: To) -> Vec<String> {
        let mut items: Vec<(u64, &str)> = self
            .found
            .iter()
            .filter(|f| f.row.to == to)
            .map(|f| (f.index.map_or(0, |i| i + 1), f.value))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items
            .into_iter()
            .flat_map(|(i, v)| {
                if i == 0 {
                    v.split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                } else {
                    vec![v.to_owned()]
                }
            })
            .collect()
    }

    fn bool(&self, to: To) -> Result<Option<bool>> {
        self.get(to)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Error::config(self.key(to), "must be `true` or `false`")),
            })
            .transpose()
    }

    fn url(&self, to: To) -> Result<Option<String>> {
        self.get(to)
            .map(|v| check_endpoint_url(&self.key(to), v))
            .transpose()
    }

    fn path(&self, to: To) -> Option<PathBuf> {
        self.get(to).map(PathBuf::from)
    }
}

struct Reader<'e> {
    env: &'e EnvVars,
    warnings: Vec<String>,
    notes: Vec<String>,
    sources: Vec<Provenance>,
}

impl<'e> Reader<'e> {
    /// Collects the keys of `section` under `prefix` (the section's prefix with its placeholders
    /// filled in); keys under the section's claim that match no row get a warning naming the
    /// nearest known key, and rows marked ignored or refused are reported.
    fn scan(&mut self, section: &'static Section, prefix: &str) -> Result<Fields<'e>> {
        let mut fields = Fields {
            section,
            prefix: prefix.to_owned(),
            found: Vec::new(),
        };
        let entries: Vec<(&'e str, String, &'e str)> = if section.exact {
            self.env
                .keys()
                .filter_map(|k| {
                    let rest = k.strip_prefix(prefix)?;
                    Some((k, rest.to_owned(), self.env.get(k)?))
                })
                .collect()
        } else {
            self.env.with_prefix_ci(prefix)
        };
        for (key, rest, value) in entries {
            let matched = section.rows.iter().find_map(|row| {
                let index = match_row(row, &rest, section.exact)?;
                Some((row, index))
            });
            let Some((row, index)) = matched else {
                let claimed = section.claims.is_some_and(|claim| {
                    let whole = normalize_key(key);
                    whole.starts_with(claim) && (!claim.is_empty() || !prefix.is_empty())
                });
                if claimed {
                    self.warnings.push(unknown_key(key, section));
                }
                continue;
            };
            match row.to {
                To::Refused(why) => {
                    return Err(Error::config(
                        key,
                        format!("is not supported by botauth: {why}"),
                    ));
                }
                To::MustBeTrue(why) if !value.eq_ignore_ascii_case("true") => {
                    return Err(Error::config(key, why));
                }
                To::Ignored(why) => {
                    self.warnings
                        .push(format!("{key} has no effect in botauth: {why}"));
                }
                _ => {}
            }
            if !matches!(row.to, To::Nested | To::Ignored(_) | To::MustBeTrue(_)) {
                self.sources.push(Provenance {
                    setting: row.to.setting().to_owned(),
                    key: key.to_owned(),
                    origin: self.env.origin(key).cloned().unwrap_or(Origin::Environment),
                });
            }
            fields.found.push(Found {
                row,
                index,
                key,
                value,
            });
        }
        Ok(fields)
    }

    /// Distinct names under `prefix` (`Connections__{name}__…` → the names) as spelled, in .NET
    /// order: case-insensitive, `SERVICE_CONNECTION` (Python) and `ServiceConnection` being one
    /// name. Each comes with its comparable form.
    fn children(&self, prefix: &str) -> Vec<(String, String)> {
        let depth = segments(prefix).len();
        let mut names: Vec<(String, String)> = Vec::new();
        for (key, _, _) in self.env.with_prefix_ci(prefix) {
            let Some(spelled) = segments(key).get(depth).copied() else {
                continue;
            };
            let comparable = comparable_name(spelled);
            if !names.iter().any(|(c, _)| *c == comparable) {
                names.push((comparable, spelled.to_owned()));
            }
        }
        names.sort();
        names
    }

    /// The client id of a section: an empty value is the SDKs' "authentication off", refused
    /// with that explanation.
    fn client_id(&self, f: &Fields<'e>, why: &str) -> Result<&'e str> {
        if f.get(To::ClientId).is_none() && self.env.is_blank(&f.key(To::ClientId), f.section.exact)
        {
            return Err(empty_app_id(&f.key(To::ClientId)));
        }
        f.require(To::ClientId, why)
    }

    /// Two configured dialects must describe the same bot.
    fn check_agreement(&mut self, found: &[Dialect]) -> Result<()> {
        // Each dialect's app ids as (key as spelled, value); the Agents SDK has one per connection.
        let ids: Vec<(Dialect, Vec<(String, &str)>)> = found
            .iter()
            .filter_map(|d| {
                let keys: Vec<String> = match d {
                    Dialect::Botas => vec!["CLIENT_ID".to_owned()],
                    Dialect::BotFramework => vec!["MicrosoftAppId".to_owned()],
                    Dialect::IdentityWeb => vec!["AzureAd__ClientId".to_owned()],
                    Dialect::AgentsSdk => self
                        .children("Connections__")
                        .into_iter()
                        .map(|(_, name)| format!("Connections__{name}__Settings__ClientId"))
                        .collect(),
                    _ => return None,
                };
                let values: Vec<(String, &str)> = keys
                    .iter()
                    .filter_map(|key| {
                        let (spelled, value) = if *d == Dialect::Botas {
                            (key.as_str(), self.env.get(key)?)
                        } else {
                            self.env.entry_ci(key)?
                        };
                        Some((spelled.to_owned(), value))
                    })
                    .collect();
                (!values.is_empty()).then_some((*d, values))
            })
            .collect();
        let Some(((d1, first), rest)) = ids.split_first() else {
            return Ok(());
        };
        for (d2, other) in rest {
            let (k2, v2) = &other[0];
            match first.iter().find(|(_, v1)| v1.eq_ignore_ascii_case(v2)) {
                Some((k1, _)) => self.notes.push(format!(
                    "{k1} and {k2} name the same app; using the {d1} settings"
                )),
                None => {
                    let k1 = &first[0].0;
                    return Err(Error::config(
                        k1.clone(),
                        format!(
                            "the {d1} setting {k1} and the {d2} setting {k2} name different apps: \
                             botauth would use {k1}, and tokens for the other app would fail later \
                             (AADSTS700016). Remove the settings of the dialect you do not use"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// An app id key set to an empty value, when no dialect is configured otherwise.
    fn empty_app_id(&self) -> Option<Error> {
        let key = [
            "MicrosoftAppId",
            "AzureAd__ClientId",
            "Connections__ServiceConnection__Settings__ClientId",
        ]
        .into_iter()
        .find(|k| self.env.is_blank(k, false))
        .or_else(|| self.env.is_blank("CLIENT_ID", true).then_some("CLIENT_ID"))?;
        Some(empty_app_id(key))
    }

    /// Builds one credential of `kind` from `f` (the keys of a connection, entry or dialect).
    fn credential(
        &self,
        kind: Kind,
        name: &str,
        f: &Fields<'e>,
        send_x5c: Option<bool>,
        client_id: &str,
    ) -> Result<CredentialConfig> {
        let why = format!(" for {name}");
        Ok(match kind {
            Kind::Secret => CredentialConfig::ClientSecret {
                secret: Secret::new(f.require(To::Secret, &why)?),
            },
            Kind::Certificate => {
                let (key_path, key_pem) = match f.get(To::KeyPathOrPem) {
                    // The JavaScript SDK takes the key's PEM text here, other samples a path:
                    // accept both, and never let PEM text travel as a path (paths are printed).
                    Some(k) if k.trim_start().starts_with("-----BEGIN") => {
                        (None, Some(Secret::new(unescape_newlines(k))))
                    }
                    Some(k) => (Some(PathBuf::from(k)), None),
                    None => (f.path(To::KeyPath), None),
                };
                let mut cert = CertificateConfig {
                    certificate_path: f.path(To::CertPath),
                    key_path,
                    key_pem,
                    base64_pfx: f.get(To::Base64Pfx).map(Secret::new),
                    password: f.get(To::Password).map(Secret::new),
                    thumbprint: f.get(To::Thumbprint).map(str::to_owned),
                    send_x5c: send_x5c.unwrap_or(false),
                    ..CertificateConfig::default()
                };
                cert.keys.certificate_path = f.key(To::CertPath);
                cert.keys.key_path = f.key(if f.has(To::KeyPathOrPem) {
                    To::KeyPathOrPem
                } else {
                    To::KeyPath
                });
                cert.keys.thumbprint = f.key(To::Thumbprint);
                cert.keys.password = f.key(To::Password);
                cert.keys.base64_pfx = f.key(To::Base64Pfx);
                CredentialConfig::Certificate(cert)
            }
            Kind::UserManagedIdentity => CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::ClientId(client_id.to_owned()),
            },
            Kind::SystemManagedIdentity => CredentialConfig::ManagedIdentity {
                id: ManagedIdentityId::System,
            },
            Kind::Federated => CredentialConfig::FederatedManagedIdentity {
                id: match f.get(To::FederatedClientId).or(f.get(To::ManagedIdentity)) {
                    Some(id) if !id.eq_ignore_ascii_case("system") => {
                        ManagedIdentityId::ClientId(id.to_owned())
                    }
                    _ => ManagedIdentityId::System,
                },
            },
            Kind::Workload => CredentialConfig::WorkloadIdentity {
                token_file: f
                    .path(To::TokenFile)
                    .or_else(|| {
                        self.env
                            .get("AZURE_FEDERATED_TOKEN_FILE")
                            .map(PathBuf::from)
                    })
                    .ok_or_else(|| {
                        Error::config(
                            f.key(To::TokenFile),
                            format!(
                                "is required{why} when AZURE_FEDERATED_TOKEN_FILE is not set: {}",
                                To::TokenFile.what()
                            ),
                        )
                    })?,
            },
            Kind::KeyVault => {
                let mut vault = KeyVaultCertificateConfig::new(
                    f.require(To::KeyVaultUrl, &why)?,
                    f.require(To::KeyVaultCertificateName, &why)?,
                );
                vault.version = f.get(To::KeyVaultVersion).map(str::to_owned);
                // Identity.Web: the entry's ManagedIdentityClientId, then AZURE_CLIENT_ID, else
                // the system-assigned identity.
                let identity = f
                    .get(To::KeyVaultIdentity)
                    .or(f.get(To::ManagedIdentity))
                    .or_else(|| self.env.get("AZURE_CLIENT_ID"))
                    .map(str::trim)
                    .filter(|id| !id.is_empty());
                vault.identity = match identity {
                    Some(id) if !id.eq_ignore_ascii_case("system") => {
                        ManagedIdentityId::ClientId(id.to_owned())
                    }
                    _ => ManagedIdentityId::System,
                };
                // Sent unless the configuration says otherwise (docs/protocol.md §11).
                vault.send_x5c = send_x5c.unwrap_or(true);
                if let Some(every) = f.get(To::KeyVaultRotationCheck) {
                    vault.rotation_check =
                        Some(parse_duration(&f.key(To::KeyVaultRotationCheck), every)?);
                }
                vault.keys.vault_url = f.key(To::KeyVaultUrl);
                vault.keys.certificate_name = f.key(To::KeyVaultCertificateName);
                CredentialConfig::KeyVaultCertificate(vault)
            }
            Kind::Refused(instead) => {
                return Err(Error::config(
                    f.key(To::Kind),
                    format!("{name} is not supported by botauth: {instead}"),
                ));
            }
        })
    }

    /// Checks the keys a credential kind requires before building it.
    fn requires(&self, choice: &Choice, f: &Fields<'e>, what: &str) -> Result<()> {
        for any_of in choice.requires {
            let set = any_of.iter().any(|to| f.has(*to));
            let fallback =
                any_of.contains(&To::TokenFile) && self.env.contains("AZURE_FEDERATED_TOKEN_FILE");
            if !set && !fallback {
                let first = any_of[0];
                let others: Vec<String> = any_of[1..].iter().map(|to| f.key(*to)).collect();
                let or = if others.is_empty() {
                    String::new()
                } else {
                    format!(" (or {})", others.join(", "))
                };
                return Err(Error::config(
                    f.key(first),
                    format!(
                        "is required{or} for {what} {}: {}",
                        choice.name,
                        first.what()
                    ),
                ));
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------------
    // botas

    fn botas(&mut self) -> Result<Draft> {
        let f = self.scan(&BOTAS, "")?;
        let client_id = self.client_id(&f, "")?;
        let tenant_id = f.require(To::TenantId, "")?;
        let mut draft = draft(
            Dialect::Botas,
            client_id,
            "CLIENT_ID",
            "TENANT_ID",
            "CLIENT_SECRET",
        );
        draft.config.tenant_id = Some(tenant_id.to_owned());
        let mi = f.get(To::ManagedIdentity);
        if let Some(mi) = mi {
            let kind = if mi.eq_ignore_ascii_case("system") {
                Kind::SystemManagedIdentity
            } else if mi.eq_ignore_ascii_case(client_id) {
                // The user-assigned identity *is* the bot's app registration.
                Kind::UserManagedIdentity
            } else {
                Kind::Federated
            };
            let credential = self.credential(kind, "MANAGED_IDENTITY_CLIENT_ID", &f, None, mi)?;
            draft.config.credentials.push(credential);
        }
        match f.get(To::Secret) {
            Some(secret) => draft
                .config
                .credentials
                .push(CredentialConfig::ClientSecret {
                    secret: Secret::new(secret),
                }),
            None if mi.is_none() && !self.key_vault_override_set() => {
                return Err(Error::config(
                    "CLIENT_SECRET",
                    "is required: set it to the client secret's value (not its id), or set \
                     MANAGED_IDENTITY_CLIENT_ID to use a managed identity",
                ));
            }
            None => {}
        }
        draft.config.allowed_service_urls = service_urls(&f)?;
        Ok(draft)
    }

    // -----------------------------------------------------------------------------------------
    // Bot Framework

    fn bot_framework(&mut self) -> Result<Draft> {
        let f = self.scan(&BOT_FRAMEWORK, "")?;
        let app_type = match f.get(To::Kind) {
            None => "MultiTenant",
            Some(t) => BOT_FRAMEWORK_APP_TYPES
                .iter()
                .find(|n| n.eq_ignore_ascii_case(t))
                .ok_or_else(|| {
                    Error::config(
                        f.key(To::Kind),
                        format!(
                            "unknown app type{}: use MultiTenant, SingleTenant or UserAssignedMSI",
                            shown(t)
                        ),
                    )
                })?,
        };
        let id_why = if app_type == "UserAssignedMSI" {
            " (the user-assigned identity's client id, with MicrosoftAppType=UserAssignedMSI)"
        } else {
            ""
        };
        let app_id = self.client_id(&f, id_why)?;
        let mut draft = draft(
            Dialect::BotFramework,
            app_id,
            &f.key(To::ClientId),
            &f.key(To::TenantId),
            &f.key(To::Secret),
        );
        let tenant = match (f.get(To::TenantId), app_type) {
            (Some(t), _) => Some(t.to_owned()),
            (None, _) if f.has(To::AuthorityWithTenant) => None,
            // Legacy multi-tenant bots get their tokens from the botframework.com tenant.
            (None, "MultiTenant") => Some("botframework.com".to_owned()),
            (None, _) => {
                return Err(Error::config(
                    f.key(To::TenantId),
                    format!(
                        "is required when MicrosoftAppType is {app_type}: set it to the bot's tenant \
                         (directory) id"
                    ),
                ));
            }
        };
        draft.config.tenant_id = tenant;
        self.common(&mut draft, &f)?;
        if let Some(callers) = Some(f.list(To::SkillCallers)).filter(|c| !c.is_empty()) {
            // Bot Framework semantics: the list names the bots allowed to call this one as a skill.
            draft.config.inbound.allowed_callers = callers;
            draft.config.inbound.skills = true;
        }
        let credentials = &mut draft.config.credentials;
        if app_type == "UserAssignedMSI" {
            credentials.push(self.credential(
                Kind::UserManagedIdentity,
                app_type,
                &f,
                None,
                app_id,
            )?);
            return Ok(draft);
        }
        if f.has(To::KeyPathOrPem) || f.has(To::CertPath) || f.has(To::Thumbprint) {
            credentials.push(self.credential(
                Kind::Certificate,
                "a certificate",
                &f,
                None,
                app_id,
            )?);
        }
        if f.has(To::Secret) {
            credentials.push(self.credential(Kind::Secret, "a client secret", &f, None, app_id)?);
        }
        if credentials.is_empty() && !self.key_vault_override_set() {
            return Err(Error::config(
                f.key(To::Secret),
                "is required: set it to the client secret's value (not its id), or configure a certificate \
                 (CertificatePrivateKey/CertificateThumbprint), or set MicrosoftAppType=UserAssignedMSI",
            ));
        }
        Ok(draft)
    }

    // -----------------------------------------------------------------------------------------
    // Microsoft.Identity.Web

    fn identity_web(&mut self) -> Result<Draft> {
        let f = self.scan(&IDENTITY_WEB, IDENTITY_WEB.prefix)?;
        let client_id = self.client_id(&f, "")?;
        let mut draft = draft(
            Dialect::IdentityWeb,
            client_id,
            &f.key(To::ClientId),
            &f.key(To::TenantId),
            "AzureAd__ClientCredentials",
        );
        draft.config.tenant_id = f.get(To::TenantId).map(str::to_owned);
        self.common(&mut draft, &f)?;
        if draft.config.tenant_id.is_none() {
            f.require(To::TenantId, "")?;
        }
        let send_x5c = f.bool(To::SendX5c)?;

        // ClientCredentials__{n}__{Field}: ordered by n numerically, gaps allowed.
        let mut indexes: Vec<(u64, String)> = Vec::new();
        for (_, name) in self.children("AzureAd__ClientCredentials__") {
            let n = name
                .parse()
                .ok()
                .filter(|_| name.bytes().all(|b| b.is_ascii_digit()));
            let n = n.ok_or_else(|| {
                Error::config(
                    format!("AzureAd__ClientCredentials__{name}"),
                    "ClientCredentials entries are indexed by numbers: use AzureAd__ClientCredentials__0__SourceType, \
                     AzureAd__ClientCredentials__1__SourceType, …",
                )
            })?;
            indexes.push((n, name));
        }
        indexes.sort();
        for (_, name) in indexes {
            let e = self.scan(
                &IDENTITY_WEB_CREDENTIAL,
                &format!("AzureAd__ClientCredentials__{name}__"),
            )?;
            if e.bool(To::Skip)?.unwrap_or(false) {
                continue;
            }
            let source = e.require(
                To::Kind,
                &format!(" (one of {})", names(IDENTITY_WEB_SOURCE_TYPES, true)),
            )?;
            let choice = pick(
                IDENTITY_WEB_SOURCE_TYPES,
                source,
                &e.key(To::Kind),
                "SourceType",
            )?;
            self.requires(choice, &e, "SourceType")?;
            let what = format!("SourceType {}", choice.name);
            let credential = self.credential(choice.kind, &what, &e, send_x5c, client_id)?;
            draft.config.credentials.push(credential);
        }
        // The flat legacy `ClientSecret` is merged in after the list, as Identity.Web does.
        if f.has(To::Secret) {
            let secret = self.credential(Kind::Secret, "ClientSecret", &f, None, client_id)?;
            draft.config.credentials.push(secret);
        }
        if draft.config.credentials.is_empty() && !self.key_vault_override_set() {
            return Err(Error::config(
                "AzureAd__ClientCredentials",
                format!(
                    "no client credential is configured: add AzureAd__ClientCredentials__0__SourceType ({}) \
                     with its settings",
                    names(IDENTITY_WEB_SOURCE_TYPES, true)
                ),
            ));
        }
        Ok(draft)
    }

    // -----------------------------------------------------------------------------------------
    // Microsoft 365 Agents SDK

    fn agents(&mut self) -> Result<Draft> {
        let names = self.children("Connections__");
        // Every key under Connections__{name}__ must be under its Settings section.
        for (key, rest, _) in self.env.with_prefix_ci("Connections__") {
            let mut parts = rest.splitn(3, "__");
            let (_, section) = (parts.next(), parts.next().unwrap_or_default());
            if section != "settings" {
                self.warnings.push(format!(
                    "{key} is not a key botauth knows: connection settings go under \
                     Connections__<name>__Settings__ (did you mean Settings?)"
                ));
            }
        }
        let mut map = Vec::new();
        let mut map_keys = Vec::new();
        let mut indexes: Vec<(u64, String)> = self
            .children("ConnectionsMap__")
            .into_iter()
            .map(|(_, n)| (n.parse().unwrap_or(u64::MAX), n))
            .collect();
        indexes.sort();
        for (_, i) in indexes {
            let m = self.scan(&AGENTS_MAP, &format!("ConnectionsMap__{i}__"))?;
            let connection = m.require(To::MapConnection, "")?;
            let known = names.iter().any(|(c, _)| *c == comparable_name(connection));
            if !known {
                let list: Vec<&str> = names.iter().map(|(_, n)| n.as_str()).collect();
                return Err(Error::config(
                    m.key(To::MapConnection),
                    format!(
                        "names no configured connection: the connections are {}",
                        list.join(", ")
                    ),
                ));
            }
            let mut entry =
                ConnectionMapEntry::new(m.get(To::MapServiceUrl).unwrap_or("*"), connection);
            entry.audience = m.get(To::MapAudience).map(str::to_owned);
            map_keys.push(m.key(To::MapServiceUrl));
            map.push(entry);
        }
        // The default connection: the first `*` rule without an audience, else the first name.
        let default = map
            .iter()
            .find(|e| matches!(e.service_url.as_str(), "*" | "") && e.audience.is_none())
            .map(|e| comparable_name(&e.connection))
            .or_else(|| names.first().map(|(c, _)| c.clone()))
            .ok_or_else(no_configuration)?;
        let mut draft = None;
        let mut others = Vec::new();
        for (comparable, name) in &names {
            let d = self.connection(name)?;
            if *comparable == default {
                draft = Some(d);
            } else {
                others.push(d);
            }
        }
        let mut draft = draft.ok_or_else(no_configuration)?;
        for other in others {
            let mut c = ConnectionConfig::new(other.config.connection_name.unwrap_or_default());
            c.client_id = other.config.client_id;
            c.tenant_id = other.config.tenant_id;
            c.cloud = match other.authority {
                Some(host) => other.config.cloud.with_authority_host(host),
                None => other.config.cloud,
            };
            c.credentials = other.config.credentials;
            c.scopes = other.config.scopes;
            draft.config.connections.push(c);
            draft.connection_keys.push(other.keys);
        }
        for entry in &mut map {
            // Map entries name connections as the connections spell them.
            let wanted = comparable_name(&entry.connection);
            if let Some((_, spelled)) = names.iter().find(|(c, _)| *c == wanted) {
                entry.connection.clone_from(spelled);
            }
        }
        draft.config.connections_map = map;

        let t = self.scan(&AGENTS_TOKEN_VALIDATION, AGENTS_TOKEN_VALIDATION.prefix)?;
        self.common(&mut draft, &t)?;
        let client_id = draft.config.client_id.clone().unwrap_or_default();
        let inbound = &mut draft.config.inbound;
        for audience in t.list(To::Audiences) {
            if !audience.eq_ignore_ascii_case(&client_id)
                && !inbound.extra_audiences.contains(&audience)
            {
                inbound.extra_audiences.push(audience);
            }
        }
        if let Some(tenant) = t.get(To::InboundTenant) {
            check_tenant(tenant, &t.key(To::InboundTenant))?;
            inbound.entra_tenants.push(tenant.to_owned());
        }
        if let Some(on) = t.bool(To::BotServiceTokens)? {
            inbound.bot_service = on;
        }
        let callers = t.list(To::AllowedCallers);
        if !callers.is_empty() {
            // Agents semantics: `*` or an empty list allows every caller.
            inbound.allowed_callers = callers;
        }
        let f = self.scan(&AGENTS_CLIENT_FACTORY, AGENTS_CLIENT_FACTORY.prefix)?;
        self.common(&mut draft, &f)?;
        Ok(draft)
    }

    /// One `Connections__{name}__Settings` section, with its key names.
    fn connection(&mut self, name: &str) -> Result<Draft> {
        let f = self.scan(
            &AGENTS_CONNECTION,
            &format!("Connections__{name}__Settings__"),
        )?;
        // .NET defaults AuthType to ClientSecret; the JavaScript SDK infers it from the keys set.
        let auth_type = match f.get(To::Kind) {
            Some(t) => t,
            None if f.has(To::TokenFile) => "WorkloadIdentity",
            None if f.has(To::FederatedClientId) => "FederatedCredentials",
            None if f.has(To::CertPath) && !f.has(To::Secret) => "Certificate",
            None => "ClientSecret",
        };
        let choice = pick(AGENTS_AUTH_TYPES, auth_type, &f.key(To::Kind), "AuthType")?;
        let client_id = self.client_id(&f, "")?;
        let mut draft = draft(
            Dialect::AgentsSdk,
            client_id,
            &f.key(To::ClientId),
            &f.key(To::TenantId),
            &f.key(To::Kind),
        );
        draft.config.connection_name = Some(name.to_owned());
        draft.config.tenant_id = f.get(To::TenantId).map(str::to_owned);
        self.common(&mut draft, &f)?;
        let managed = matches!(
            choice.kind,
            Kind::UserManagedIdentity | Kind::SystemManagedIdentity | Kind::Refused(_)
        );
        if draft.config.tenant_id.is_none() && !managed {
            return Err(Error::config(
                f.key(To::TenantId),
                format!(
                    "is required for AuthType {}: set it to the bot's tenant (directory) id",
                    choice.name
                ),
            ));
        }
        self.requires(choice, &f, "AuthType")?;
        let send_x5c = f.bool(To::SendX5c)?;
        let what = format!("AuthType {}", choice.name);
        let credential = self.credential(choice.kind, &what, &f, send_x5c, client_id)?;
        draft.config.credentials.push(credential);
        Ok(draft)
    }

    // -----------------------------------------------------------------------------------------
    // Workload identity

    fn workload_identity(&mut self) -> Result<Draft> {
        let f = self.scan(&WORKLOAD_IDENTITY, "")?;
        let client_id = self.client_id(&f, "")?;
        let mut draft = draft(
            Dialect::WorkloadIdentity,
            client_id,
            "AZURE_CLIENT_ID",
            "AZURE_TENANT_ID",
            "AZURE_FEDERATED_TOKEN_FILE",
        );
        draft.config.tenant_id = Some(f.require(To::TenantId, "")?.to_owned());
        self.common(&mut draft, &f)?;
        f.require(
            To::TokenFile,
            " (the AKS workload identity webhook sets it)",
        )?;
        let credential =
            self.credential(Kind::Workload, "workload identity", &f, None, client_id)?;
        draft.config.credentials.push(credential);
        Ok(draft)
    }

    // -----------------------------------------------------------------------------------------
    // Keys shared by every dialect's sections.

    /// Applies the settings any section may carry: tenant-bearing authorities, clouds, inbound
    /// URLs, scopes, the Token Service URL and the HTTP timeout.
    fn common(&mut self, draft: &mut Draft, f: &Fields<'e>) -> Result<()> {
        let config = &mut draft.config;
        if let Some(value) = f.get(To::Cloud) {
            config.cloud = Cloud::from_name(value).map_err(|e| rekey(e, &f.key(To::Cloud)))?;
        }
        if f.bool(To::IsGov)?.unwrap_or(false) {
            config.cloud = Cloud::UsGov;
        }
        if let Some(host) = f.get(To::Authority) {
            set_authority(draft, &f.key(To::Authority), host, true)?;
        }
        if let Some(endpoint) = f.get(To::AuthorityWithTenant) {
            let key = f.key(To::AuthorityWithTenant);
            let url = parse_endpoint_url(&key, endpoint)?;
            // `https://login.microsoftonline.com/{tenant}`: the host is the authority, the first
            // path segment the tenant (used when no tenant key is given).
            if draft.config.tenant_id.is_none() {
                if let Some(t) = url.path.split('/').find(|s| !s.is_empty()) {
                    draft.config.tenant_id = Some(t.to_owned());
                    draft.keys.tenant_id.clone_from(&key);
                }
            }
            set_authority(draft, &key, &url.origin, true)?;
        }
        let config = &mut draft.config;
        let inbound = &mut config.inbound;
        if let Some(url) = f.url(To::MetadataUrl)? {
            inbound.metadata_url = Some(url);
        }
        if let Some(url) = f.url(To::EmulatorMetadataUrl)? {
            inbound.emulator_metadata_url = Some(url);
        }
        if let Some(url) = f.url(To::EntraMetadataUrl)? {
            inbound.entra_metadata_url = Some(url);
        }
        if let Some(issuer) = f.get(To::Issuer) {
            inbound.issuer = Some(issuer.to_owned());
        }
        for issuer in f.list(To::ValidIssuers) {
            if !inbound.valid_issuers.contains(&issuer) {
                inbound.valid_issuers.push(issuer);
            }
        }
        if let Some(every) = f.get(To::KeyRefresh) {
            inbound.key_refresh = Some(parse_timespan(&f.key(To::KeyRefresh), every)?);
        }
        let scopes = f.list(To::Scopes);
        if !scopes.is_empty() {
            config.scopes = scopes;
        }
        if let Some(url) = f.url(To::TokenServiceUrl)? {
            config.token_service_url = Some(url);
        }
        if let Some(timeout) = f.get(To::HttpTimeout) {
            config.http_timeout = Some(parse_duration(&f.key(To::HttpTimeout), timeout)?);
        }
        for url in service_urls(f)? {
            if !config.allowed_service_urls.contains(&url) {
                config.allowed_service_urls.push(url);
            }
        }
        Ok(())
    }

    /// `BOTAUTH_*`: `BOTAUTH_CLOUD` replaces the dialect's cloud (scopes, metadata, audience) but
    /// keeps a custom authority the dialect gave; `BOTAUTH_AUTHORITY_HOST` replaces any authority.
    fn overrides(&mut self, draft: &mut Draft) -> Result<()> {
        let f = self.scan(&BOTAUTH, BOTAUTH.prefix)?;
        let cloud_key = f.key(To::Cloud);
        let cloud = f
            .get(To::Cloud)
            .map(|name| Cloud::from_name(name).map_err(|e| rekey(e, &cloud_key)))
            .transpose()?;
        if let Some(host) = f.get(To::Authority) {
            // As the dialects' own authority keys: a known cloud's host selects that cloud,
            // unless BOTAUTH_CLOUD decides the cloud.
            set_authority(draft, &f.key(To::Authority), host, cloud.is_none())?;
        }
        self.key_vault_overrides(draft, &f)?;
        let mut only_common = Fields {
            section: f.section,
            prefix: f.prefix.clone(),
            found: Vec::new(),
        };
        only_common.found = f
            .found
            .into_iter()
            .filter(|x| !matches!(x.row.to, To::Cloud | To::Authority))
            .collect();
        self.common(draft, &only_common)?;
        if let Some(cloud) = cloud {
            draft.config.cloud = cloud;
        }
        if let Some(host) = draft.authority.take() {
            if !host.eq_ignore_ascii_case(draft.config.cloud.authority_host()) {
                draft.config.cloud = draft.config.cloud.with_authority_host(host);
            }
        }
        Ok(())
    }
}

impl Reader<'_> {
    /// `BOTAUTH_KEY_VAULT_*`: a Key Vault certificate put first in the credential list of any
    /// dialect (`BOTAUTH_KEY_VAULT_URL` + `_CERTIFICATE_NAME`, optional `_CERTIFICATE_VERSION` and
    /// `_IDENTITY`), and `BOTAUTH_KEY_VAULT_ROTATION_CHECK` for every Key Vault certificate.
    fn key_vault_overrides(&mut self, draft: &mut Draft, f: &Fields<'_>) -> Result<()> {
        if f.has(To::KeyVaultUrl)
            || f.has(To::KeyVaultCertificateName)
            || f.has(To::KeyVaultVersion)
            || f.has(To::KeyVaultIdentity)
        {
            let client_id = draft.config.client_id.clone().unwrap_or_default();
            let credential =
                self.credential(Kind::KeyVault, "BOTAUTH_KEY_VAULT_URL", f, None, &client_id)?;
            draft.config.credentials.insert(0, credential);
        }
        if let Some(every) = f.get(To::KeyVaultRotationCheck) {
            let every = parse_duration(&f.key(To::KeyVaultRotationCheck), every)?;
            let connections = draft.config.connections.iter_mut();
            let lists = std::iter::once(&mut draft.config.credentials)
                .chain(connections.map(|c| &mut c.credentials));
            for list in lists {
                for credential in list.iter_mut() {
                    if let CredentialConfig::KeyVaultCertificate(vault) = credential {
                        vault.rotation_check = Some(every);
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `BOTAUTH_KEY_VAULT_URL` supplies a credential, so a dialect may have none of its own.
    fn key_vault_override_set(&self) -> bool {
        self.env.contains("BOTAUTH_KEY_VAULT_URL")
    }
}

fn empty_app_id(key: &str) -> Error {
    Error::config(
        key,
        "is empty: the Bot Framework SDKs treat an empty app id as \"authentication off\"; botauth \
         never turns authentication off. Set it to the bot's app id (to test locally without \
         Azure, run `botauth sandbox`)",
    )
}

/// A key's sections: `Connections__Bot__Settings` and `Connections:Bot:Settings` are both
/// `[Connections, Bot, Settings]`.
fn segments(key: &str) -> Vec<&str> {
    key.split("__")
        .flat_map(|s| s.split(':'))
        .filter(|s| !s.is_empty())
        .collect()
}

/// A connection name compared as the SDKs' spellings require (`SERVICE_CONNECTION` =
/// `serviceConnection` = `ServiceConnection`).
fn comparable_name(name: &str) -> String {
    name.replace('_', "").to_ascii_lowercase()
}

/// A new dialect draft naming the dialect's keys for [`validate`].
fn draft(
    dialect: Dialect,
    client_id: &str,
    id_key: &str,
    tenant_key: &str,
    credentials: &str,
) -> Draft {
    let mut config = BotAuthConfig::new(dialect);
    config.client_id = Some(client_id.to_owned());
    let mut draft = Draft::new(config);
    draft.keys = KeyNames {
        client_id: id_key.to_owned(),
        tenant_id: tenant_key.to_owned(),
        credentials: credentials.to_owned(),
        native: false,
    };
    draft
}

/// Folds in an authority host named under `key`: a known host selects its cloud (when
/// `select_cloud`), any other becomes a custom authority.
fn set_authority(draft: &mut Draft, key: &str, value: &str, select_cloud: bool) -> Result<()> {
    let url = check_endpoint_url(key, value)?;
    match known_cloud(&url).filter(|_| select_cloud) {
        Some(cloud) => {
            draft.config.cloud = cloud;
            draft.authority = None;
        }
        None => draft.authority = Some(url),
    }
    Ok(())
}

/// The service-URL allow-list entries of a section, each checked.
fn service_urls(f: &Fields<'_>) -> Result<Vec<String>> {
    let entries = f.list(To::AllowedServiceUrls);
    if !entries.is_empty() {
        super::validate::check_service_url_entries(&f.key(To::AllowedServiceUrls), &entries)?;
    }
    Ok(entries)
}

/// Whether `row` matches the normalized key rest: `Some(None)` for the key itself,
/// `Some(Some(i))` for element `i` of a list key.
fn match_row(row: &Row, rest: &str, exact: bool) -> Option<Option<u64>> {
    let names = std::iter::once(row.key).chain(row.aliases.iter().copied());
    for name in names {
        let name = if exact {
            name.to_owned()
        } else {
            normalize_key(name)
        };
        if rest == name {
            return Some(None);
        }
        if let Some(tail) = rest.strip_prefix(&name).and_then(|t| t.strip_prefix("__")) {
            if row.to == To::Nested {
                return Some(None);
            }
            if row.to.is_list() && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
                return tail.parse().ok().map(Some);
            }
        }
    }
    None
}

/// "`key` is not a key botauth knows; did you mean `nearest`?"
fn unknown_key(key: &str, section: &Section) -> String {
    let tail = normalize_key(key);
    let nearest = section
        .rows
        .iter()
        .flat_map(|r| std::iter::once(r.key).chain(r.aliases.iter().copied()))
        .min_by_key(|name| {
            let name = normalize_key(name);
            let start = tail.len().saturating_sub(name.len() + 2);
            (start..=tail.len())
                .filter_map(|i| tail.get(i..))
                .map(|t| edit_distance(t, &name))
                .min()
                .unwrap_or(usize::MAX)
        });
    let prefix = section
        .prefix
        .replace("{name}", "<name>")
        .replace("{n}", "<n>");
    match nearest {
        Some(name) => {
            format!("{key} is not a key botauth knows and is ignored: did you mean {prefix}{name}?")
        }
        None => format!("{key} is not a key botauth knows and is ignored"),
    }
}

/// Levenshtein distance (ASCII, case already folded).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

/// Resolves an enumeration value by name (any case) or .NET number.
fn pick<'t>(choices: &'t [Choice], value: &str, key: &str, what: &str) -> Result<&'t Choice> {
    choices
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(value) || value.parse() == Ok(c.number))
        .ok_or_else(|| {
            Error::config(
                key,
                format!(
                    "unknown {what}{}: use {}",
                    shown(value),
                    names(choices, true)
                ),
            )
        })
}

/// A .NET `TimeSpan` (`12:00:00`, `1.00:00:00`) or a botauth duration (`30s`, `3600`).
fn parse_timespan(key: &str, value: &str) -> Result<std::time::Duration> {
    let v = value.trim();
    if !v.contains(':') {
        return parse_duration(key, v);
    }
    let (days, clock) = match v.split_once('.') {
        Some((d, rest)) if rest.contains(':') && !d.contains(':') => (d, rest),
        _ => ("0", v),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let number = |s: &str| s.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
    let seconds = match (number(days), parts.as_slice()) {
        (Some(d), [h, m, s]) => number(h)
            .zip(number(m))
            .zip(number(s))
            .map(|((h, m), s)| d * 86_400.0 + h * 3_600.0 + m * 60.0 + s),
        _ => None,
    };
    match seconds {
        Some(s) if s > 0.0 => parse_duration(key, &s.to_string()),
        _ => Err(Error::config(
            key,
            "is not a time span: use `hh:mm:ss` (`12:00:00`), `d.hh:mm:ss`, or seconds",
        )),
    }
}

/// How an error mentions a value the user gave for an enumerated key: quoted when it looks like a
/// word (a typo worth showing), otherwise not at all (it may be a secret pasted one line off).
fn shown(value: &str) -> String {
    if value.len() <= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        format!(" `{value}`")
    } else {
        String::new()
    }
}

/// PEM text put in a one-line variable (a `.env` file, a portal setting) often spells its line
/// breaks as `\n`.
fn unescape_newlines(pem: &str) -> String {
    if pem.contains('\n') {
        pem.to_owned()
    } else {
        pem.replace("\\n", "\n")
    }
}
// ---------------------------------------------------------------------------------------------
// Public entry points.

impl BotAuthConfig {
    /// Reads the configuration from the process environment, detecting the dialect (see
    /// [`BotAuthConfig::from_vars`] for the detection order and the generic overrides), with a
    /// `.env` file of the working directory (or the file `BOTAUTH_CONFIG` names) underneath: see
    /// [`ConfigLoader`](super::ConfigLoader).
    pub fn from_env() -> Result<BotAuthConfig> {
        super::ConfigLoader::from_process().load()
    }

    /// Reads the configuration from an injected environment, detecting the dialect.
    ///
    /// # Dialect detection
    ///
    /// The dialects whose keys are present, by precedence:
    ///
    /// 1. Microsoft 365 Agents SDK: any `Connections__<name>__…` key;
    /// 2. Microsoft.Identity.Web: any `AzureAd__*` key;
    /// 3. Bot Framework: `MicrosoftAppId`, `MicrosoftAppPassword`, `MicrosoftAppType` or
    ///    `MicrosoftAppTenantId`;
    /// 4. botas: `CLIENT_ID`, `CLIENT_SECRET`, `TENANT_ID` or `MANAGED_IDENTITY_CLIENT_ID`;
    /// 5. workload identity: `AZURE_FEDERATED_TOKEN_FILE` together with `AZURE_CLIENT_ID`.
    ///
    /// The first one is read. When two of 1–4 name the bot's app id, they must agree: different
    /// ids are an error naming both keys (the request would fail later with AADSTS700016), equal
    /// ones a note at INFO. The workload identity variables are set by the AKS webhook rather than
    /// by the user, so they never conflict.
    ///
    /// The .NET dialects (Agents SDK, Identity.Web, Bot Framework) compare keys
    /// case-insensitively and accept `:` as well as `__` between sections; botas, workload identity
    /// and the `BOTAUTH_*` keys are exact. Values are trimmed and an empty value counts as absent,
    /// except an empty app id, which is refused (the SDKs read it as "authentication off").
    /// Unknown keys under a dialect's prefix (`AzureAd__ClinetId`, `MicrosoftAppPasword`) and keys
    /// without effect in botauth are logged at WARN naming the nearest known key; see
    /// [`BotAuthConfig::explain_vars`] to get them as data. Use [`BotAuthConfig::from_vars_as`] to
    /// skip detection.
    ///
    /// # Generic overrides (every dialect)
    ///
    /// - `BOTAUTH_CLOUD`: `public`, `usgov`, `china` (see [`Cloud::from_name`]); replaces the
    ///   dialect's cloud but keeps a custom authority host the dialect named;
    /// - `BOTAUTH_AUTHORITY_HOST`: the Entra authority host (https, or http for loopback hosts);
    ///   a known cloud's host selects that cloud unless `BOTAUTH_CLOUD` is set;
    /// - `BOTAUTH_METADATA_URL`: the inbound Bot Service metadata URL (same rule);
    /// - `BOTAUTH_ALLOWED_SERVICE_URLS`: extra hosts or URLs the bot may send its token to
    ///   (comma- or space-separated; added to botas' `ALLOWED_SERVICE_URLS` and to the Bot Service
    ///   defaults, see [`ServiceUrlAllowList`](crate::service_url::ServiceUrlAllowList));
    /// - `BOTAUTH_HTTP_TIMEOUT`: the timeout of every HTTP request (`30`, `30s`, `1500ms`);
    /// - `BOTAUTH_TOKEN_SERVICE_URL`: the Bot Framework Token Service (user sign-in).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the key at fault, spelled as the dialect spells it (e.g.
    /// `MicrosoftAppPassword`, `AzureAd__ClientCredentials__0__CertificateDiskPath`), or
    /// `CLIENT_ID` when no dialect's keys are present at all. Values are never repeated.
    pub fn from_vars<I, K, V>(vars: I) -> Result<BotAuthConfig>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        read_env(None, &vars.into_iter().collect())
    }

    /// Reads the configuration from an injected environment in the given dialect, without
    /// detection: keys of other dialects are ignored. [`Dialect::Native`] is a file format and is
    /// refused (key `dialect`).
    pub fn from_vars_as<I, K, V>(dialect: Dialect, vars: I) -> Result<BotAuthConfig>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        read_env(Some(dialect), &vars.into_iter().collect())
    }

    /// Reads `vars` like [`BotAuthConfig::from_vars`] and tells how: for every key that set
    /// something, the setting and where the key came from (see [`Origin`]), plus the warnings and
    /// notes [`from_vars`](BotAuthConfig::from_vars) would log. Nothing is logged.
    ///
    /// ```
    /// use botauth_core::config::{BotAuthConfig, EnvVars};
    /// let vars: EnvVars = [("CLIENT_ID", "app"), ("TENANT_ID", "contoso.com"),
    ///     ("CLIENT_SECRET", "s3cr3t"), ("CLIENT_SCERET", "typo")].into_iter().collect();
    /// let explained = BotAuthConfig::explain_vars(&vars).unwrap();
    /// assert_eq!(explained.config.client_id.as_deref(), Some("app"));
    /// assert!(explained.sources.iter().any(|s| s.key == "CLIENT_ID" && s.setting == "client_id"));
    /// ```
    pub fn explain_vars(vars: &EnvVars) -> Result<Explained> {
        explain(None, vars)
    }
}
