//! [`EnvVars`]: the flat key–value view every dialect reader works on, with where each value came
//! from (an environment variable, a `.env` line, a key of a JSON or TOML file).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from, for `botauth config` and for messages that must point
/// at the right file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Origin {
    /// An environment variable (of the process, or of an injected [`EnvVars`]).
    Environment,
    /// A line of a `.env` file.
    DotEnv {
        /// The file.
        path: PathBuf,
    },
    /// A key of a configuration file (`appsettings.json`, `appsettings.Development.json`, a
    /// botauth TOML file).
    File {
        /// The file.
        path: PathBuf,
        /// The key as the file spells it, sections joined with `:` (`AzureAd:ClientId`).
        key: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Environment => f.write_str("environment variable"),
            Origin::DotEnv { path } => write!(f, "{}", path.display()),
            Origin::File { path, key } => write!(f, "{} ({key})", path.display()),
        }
    }
}

/// An injected environment: the variables a configuration is read from.
///
/// [`BotAuthConfig::from_env`](super::BotAuthConfig::from_env) fills one from the process
/// environment (and a `.env` file); tests and applications that keep their settings elsewhere
/// build one themselves (`EnvVars::from_iter([("CLIENT_ID", "…")])`). Each value remembers its
/// [`Origin`].
///
/// Lookups return values with surrounding whitespace trimmed, and treat an empty (or all-blank)
/// value as absent, so `MicrosoftAppPassword=` in a `.env` file means "not set".
///
/// `Debug` prints the keys only, never a value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvVars {
    vars: BTreeMap<String, (String, Origin)>,
}

impl EnvVars {
    /// An empty environment.
    pub fn new() -> Self {
        EnvVars::default()
    }

    /// The process environment. Variables whose name or value is not valid UTF-8 are skipped
    /// (`std::env::vars()` would panic on them).
    pub fn from_process() -> Self {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    }

    /// Sets `key` to `value` (an environment variable), replacing an earlier value of exactly
    /// that key.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.insert_from(key, value, Origin::Environment);
    }

    /// Sets `key` to `value`, remembering where it came from.
    pub(crate) fn insert_from(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        origin: Origin,
    ) {
        self.vars.insert(key.into(), (value.into(), origin));
    }

    /// Sets every key of `layer` over this environment: a later layer wins, per key, compared
    /// the way [`EnvVars::get_ci`] compares keys (ASP.NET's layering: `appsettings.json`, then
    /// `appsettings.{Environment}.json`, then environment variables).
    pub(crate) fn overlay(&mut self, layer: EnvVars) {
        for (key, (value, origin)) in layer.vars {
            let wanted = normalize_key(&key);
            self.vars.retain(|k, _| normalize_key(k) != wanted);
            self.vars.insert(key, (value, origin));
        }
    }

    /// Sets every key of `defaults` that this environment does not have (in any spelling): how a
    /// `.env` file is read, where variables already set win.
    pub(crate) fn fill_from(&mut self, defaults: EnvVars) {
        for (key, (value, origin)) in defaults.vars {
            let wanted = normalize_key(&key);
            if !self.vars.keys().any(|k| normalize_key(k) == wanted) {
                self.vars.insert(key, (value, origin));
            }
        }
    }

    /// The value of exactly `key` (case-sensitive), trimmed; `None` when absent or blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).and_then(|(v, _)| non_blank(v))
    }

    /// The value of `key` compared the way .NET configuration compares keys: ASCII
    /// case-insensitively, with `:` and `__` as interchangeable section separators
    /// (`AzureAd:ClientId`, `AZUREAD__CLIENTID` and `azuread__clientid` are one key). Trimmed;
    /// `None` when absent or blank. When several spellings are set, an exact match wins, then the
    /// first in sorted key order.
    pub(crate) fn get_ci(&self, key: &str) -> Option<&str> {
        self.entry_ci(key).map(|(_, v)| v)
    }

    /// Like [`EnvVars::get_ci`], with the key as it is spelled in this environment.
    pub(crate) fn entry_ci(&self, key: &str) -> Option<(&str, &str)> {
        if let Some((k, (v, _))) = self.vars.get_key_value(key) {
            if let Some(v) = non_blank(v) {
                return Some((k, v));
            }
        }
        let wanted = normalize_key(key);
        self.vars
            .iter()
            .filter(|(k, _)| normalize_key(k) == wanted)
            .find_map(|(k, (v, _))| Some((k.as_str(), non_blank(v)?)))
    }

    /// Whether `key` (compared as in [`EnvVars::get_ci`], or exactly when `exact`) is present
    /// with a blank value: `MicrosoftAppId=` written on purpose.
    pub(crate) fn is_blank(&self, key: &str, exact: bool) -> bool {
        let wanted = normalize_key(key);
        self.vars.iter().any(|(k, (v, _))| {
            (if exact {
                k == key
            } else {
                normalize_key(k) == wanted
            }) && non_blank(v).is_none()
        })
    }

    /// Where the value of exactly `key` came from.
    pub fn origin(&self, key: &str) -> Option<&Origin> {
        self.vars.get(key).map(|(_, o)| o)
    }

    /// Whether `key` (exactly) has a non-blank value.
    pub fn contains(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The number of variables (including blank ones).
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// Whether there are no variables at all.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The variable names, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// Non-blank variables whose normalized key (see [`EnvVars::get_ci`]) starts with the
    /// normalized `prefix`: `(key as spelled, normalized rest of the key, trimmed value)`.
    pub(crate) fn with_prefix_ci(&self, prefix: &str) -> Vec<(&str, String, &str)> {
        let prefix = normalize_key(prefix);
        self.vars
            .iter()
            .filter_map(|(k, (v, _))| {
                let rest = normalize_key(k).strip_prefix(&prefix)?.to_owned();
                Some((k.as_str(), rest, non_blank(v)?))
            })
            .collect()
    }
}

pub(crate) fn non_blank(v: &str) -> Option<&str> {
    Some(v.trim()).filter(|v| !v.is_empty())
}

/// A key in .NET's comparison form: lower case, sections joined with `__`.
pub(crate) fn normalize_key(key: &str) -> String {
    key.trim().replace(':', "__").to_ascii_lowercase()
}

impl fmt::Debug for EnvVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvVars")
            .field("keys", &self.vars.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvVars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut env = EnvVars::new();
        env.extend(iter);
        env
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for EnvVars {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, iter: I) {
        for (k, v) in iter {
            self.insert(k, v);
        }
    }
}

impl IntoIterator for EnvVars {
    type Item = (String, String);
    type IntoIter = std::iter::Map<
        std::collections::btree_map::IntoIter<String, (String, Origin)>,
        fn((String, (String, Origin))) -> (String, String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.vars.into_iter().map(|(k, (v, _))| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::config::{BotAuthConfig, Dialect};

    const APP: &str = "00000000-0000-0000-0000-00000000b07a";
    const SECRET: &str = "s3cr3t~Value+/=";

    #[test]
    fn lookups_trim_treat_blank_as_absent_and_compare_as_dotnet() {
        let env: EnvVars = [
            ("AzureAd:ClientId", " abc "),
            ("EMPTY", ""),
            ("BLANK", "   "),
            ("Exact", "1"),
        ]
        .into_iter()
        .collect();
        assert_eq!(env.get("AzureAd:ClientId"), Some("abc"));
        assert_eq!(env.get("azuread:clientid"), None);
        assert_eq!(env.get_ci("AZUREAD__CLIENTID"), Some("abc"));
        assert_eq!(env.get_ci("azuread:clientid"), Some("abc"));
        assert_eq!(env.get("EMPTY"), None);
        assert_eq!(env.get_ci("blank"), None);
        assert!(!env.contains("EMPTY"));
        assert_eq!(env.get_ci("exact"), Some("1"));
        assert_eq!((env.len(), env.is_empty()), (4, false));
        assert!(EnvVars::new().is_empty());
    }

    #[test]
    fn the_exact_spelling_wins() {
        let env: EnvVars = [("MICROSOFTAPPID", "upper"), ("MicrosoftAppId", "exact")]
            .into_iter()
            .collect();
        assert_eq!(env.get_ci("MicrosoftAppId"), Some("exact"));
        assert_eq!(env.get_ci("microsoftappid"), Some("upper"));
    }

    #[test]
    fn debug_prints_the_keys_only() {
        let mut env = EnvVars::new();
        env.insert("CLIENT_SECRET", SECRET);
        env.extend([("CLIENT_ID", APP)]);
        let dbg = format!("{env:?} {env:#?}");
        assert!(dbg.contains("CLIENT_SECRET"), "{dbg}");
        assert!(!dbg.contains("s3cr3t") && !dbg.contains(APP), "{dbg}");
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            ["CLIENT_ID", "CLIENT_SECRET"]
        );
    }

    #[test]
    fn round_trip_into_from_vars() {
        let env: EnvVars = [
            ("CLIENT_ID", APP),
            ("CLIENT_SECRET", SECRET),
            ("TENANT_ID", "contoso.com"),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            BotAuthConfig::from_vars(env).unwrap().dialect,
            Dialect::Botas
        );
    }

    #[test]
    fn from_env_reads_the_process_environment() {
        let vars = EnvVars::from_process();
        let path = std::env::var("PATH").ok();
        assert_eq!(vars.get("PATH"), path.as_deref().and_then(non_blank));
        // Whatever the environment holds, reading it must not panic; without any botauth keys
        // (and no `.env` or BOTAUTH_CONFIG file) it is the "nothing found" error.
        let result = BotAuthConfig::from_env();
        let nothing = super::super::env::detect(&vars).is_none()
            && std::env::var_os("BOTAUTH_CONFIG").is_none()
            && !std::path::Path::new(".env").exists();
        if nothing {
            assert!(
                matches!(result, Err(Error::Config { ref key, .. }) if key == "CLIENT_ID"),
                "{result:?}"
            );
        }
    }
}
