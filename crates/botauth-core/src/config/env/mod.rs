//! The dialect reader (docs/protocol.md §7): one walk over the tables of `tables.rs` for botas,
//! Bot Framework, Microsoft.Identity.Web, the Microsoft 365 Agents SDK and Azure workload
//! identity, producing [`BotAuthConfig`], the warnings about keys it did not use, and where each
//! value came from.

use super::model::{BotAuthConfig, CredentialConfig, Dialect};
use super::tables::{Section, To};
use super::validate::{KeyNames, validate};
use super::vars::{EnvVars, Origin, normalize_key};
use crate::{Error, Result};

mod dialects;
mod fields;
mod settings;

use fields::{Fields, Found, comparable_name, match_row, segments, unknown_key};
use settings::empty_app_id;

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
    /// - `BOTAUTH_CLOUD`: `public`, `usgov`, `china` (see [`Cloud`](crate::Cloud)'s `FromStr`); replaces the
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
