//! File readers: botauth's native format (TOML or JSON, deserialized straight into the model) and
//! .NET `appsettings.json` (flattened to `Section__Key__0__Sub` keys and read by the environment
//! dialect readers). Which file is read, and how files and the environment are layered, is
//! [`ConfigLoader`](super::ConfigLoader)'s business (`sources.rs`).
//!
//! Parse errors name the file and the line and column, and never quote the file's contents: serde's
//! messages can echo a value (`invalid type: string "…"`), and that value can be a secret. Only the
//! model's own field and variant names survive in the message.
//!
//! `appsettings.json` is read as ASP.NET reads it (docs/protocol.md §9, "ASP.NET configuration
//! rules"): `//` and `/* */` comments and trailing commas are accepted (the Identity.Web and Agents
//! templates ship comments), keys are case-insensitive and a key that repeats another one in any
//! case is an error, arrays flatten to `:0`, `:1`, values are strings and `null` is absent.

use std::path::Path;

use super::env::{detect, read_env};
use super::model::BotAuthConfig;
use super::{ConfigLoader, EnvVars};
use crate::{Error, Result};

mod appsettings;
mod native;

pub(crate) use appsettings::{appsettings_vars, strip_json_extensions};
pub(crate) use native::{native_json, native_toml};

const TOML_ORIGIN: &str = "<toml>";
const JSON_ORIGIN: &str = "<json>";
pub(crate) const APPSETTINGS_ORIGIN: &str = "<appsettings.json>";

impl BotAuthConfig {
    /// Reads a configuration file, by extension:
    ///
    /// - `.toml`: botauth's native format;
    /// - `.json`: botauth's native format (comments and trailing commas allowed), unless the file
    ///   is a .NET `appsettings.json` (named `appsettings….json`, or with a top-level `AzureAd`,
    ///   `Connections` object or `MicrosoftAppId` key, any case), which is read as ASP.NET reads
    ///   it: `appsettings.{Environment}.json` from the same directory laid over it when it exists,
    ///   and the environment variables over both;
    /// - `.env` (a file named `.env`, `.env.*` or `*.env`): `KEY=value` lines as dotenv tools
    ///   read them; variables already in the environment win.
    ///
    /// The `BOTAUTH_*` overrides of the environment (see [`BotAuthConfig::from_vars`]) apply to
    /// every kind of file. This is [`ConfigLoader::from_process`]`().file(path).load()`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the file for I/O and parse errors (with line and column, never with
    /// the file's contents), or naming the key at fault for invalid settings.
    pub fn from_file(path: impl AsRef<Path>) -> Result<BotAuthConfig> {
        ConfigLoader::from_process().file(path.as_ref()).load()
    }

    /// Reads a .NET `appsettings.json` document: its sections are flattened to environment-style
    /// keys (`{"AzureAd":{"ClientCredentials":[{"SourceType":"ClientSecret"}]}}` becomes
    /// `AzureAd__ClientCredentials__0__SourceType`) and read with the dialect detection of
    /// [`BotAuthConfig::from_vars`], so the `BOTAUTH_*` overrides work as top-level keys too.
    /// Comments and trailing commas are accepted and a key repeated in any case is an error, as in
    /// ASP.NET.
    ///
    /// This reads the text alone: no `appsettings.{Environment}.json`, and no environment variable
    /// except one. As in Microsoft.Identity.Web and the Agents SDK, a workload identity credential
    /// without a token file path falls back to the process's `AZURE_FEDERATED_TOKEN_FILE`. Use
    /// [`BotAuthConfig::from_file`] or [`ConfigLoader`] for ASP.NET's layering.
    pub fn from_appsettings_json(json: &str) -> Result<BotAuthConfig> {
        let mut vars =
            appsettings_vars(json, Path::new(APPSETTINGS_ORIGIN), APPSETTINGS_ORIGIN)?.vars;
        vars.fill_from(process_fallbacks());
        read_appsettings(&vars, APPSETTINGS_ORIGIN)
    }

    /// Reads botauth's native format from TOML text. Errors about the text name `<toml>`.
    pub fn from_toml_str(s: &str) -> Result<BotAuthConfig> {
        native_toml(s, TOML_ORIGIN)
    }

    /// Reads botauth's native format from JSON text. Errors about the text name `<json>`.
    pub fn from_json_str(s: &str) -> Result<BotAuthConfig> {
        native_json(s, JSON_ORIGIN)
    }
}

fn process_fallbacks() -> EnvVars {
    let mut env = EnvVars::new();
    if let Ok(file) = std::env::var("AZURE_FEDERATED_TOKEN_FILE") {
        env.insert("AZURE_FEDERATED_TOKEN_FILE", file);
    }
    env
}

/// Reads flattened `appsettings` keys (already layered) in the dialect they speak. `shown` names
/// the file in the error when no dialect's keys are present.
pub(crate) fn read_appsettings(vars: &EnvVars, shown: &str) -> Result<BotAuthConfig> {
    let dialect = detect(vars).ok_or_else(|| no_appsettings(shown))?;
    read_env(Some(dialect), vars)
}

/// The error when neither `appsettings` files nor the environment hold a dialect's keys.
pub(crate) fn no_appsettings(shown: &str) -> Error {
    Error::config(
        shown,
        "no botauth settings found: add an `AzureAd` section (Microsoft.Identity.Web), \
         `Connections:ServiceConnection:Settings` (Agents SDK) or `MicrosoftAppId`/`MicrosoftAppPassword` \
         (Bot Framework)",
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;

    pub(super) const APP: &str = "00000000-0000-0000-0000-00000000b07a";
    pub(super) const TENANT: &str = "11111111-2222-3333-4444-555555555555";
    pub(super) const SECRET: &str = "s3cr3t~Value+/=";

    pub(super) fn key_of(r: Result<BotAuthConfig>) -> String {
        match r {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    pub(super) fn write_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
        let path = dir.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        path
    }

    #[test]
    fn file_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.toml");
        let e = BotAuthConfig::from_file(&missing).unwrap_err();
        assert!(
            matches!(e, Error::Config { ref key, .. } if *key == missing.display().to_string())
        );
        let yaml = write_file(&dir, "botauth.yaml", "client_id: a");
        let e = BotAuthConfig::from_file(&yaml).unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. } if *key == yaml.display().to_string()));
        let bad = write_file(&dir, "bad.toml", &format!("secret = \"{SECRET}"));
        let e = BotAuthConfig::from_file(&bad).unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. } if *key == bad.display().to_string()));
        assert!(!e.to_string().contains("s3cr3t"));
    }
}
