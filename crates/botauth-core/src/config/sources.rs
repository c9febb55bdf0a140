//! [`ConfigLoader`]: which files a configuration is read from, and how they are layered with the
//! environment.
//!
//! The rules follow what .NET and Node users already keep next to their bots (docs/protocol.md §9,
//! "ASP.NET configuration rules"):
//!
//! - no file named: the environment, with a `.env` file of the working directory filling in the
//!   keys the environment does not set (as dotenv tools do: the environment wins);
//! - `BOTAUTH_CONFIG` (or [`ConfigLoader::file`]) names a `.env`, `.toml` or `.json` file, read
//!   instead of the working directory's `.env`;
//! - `appsettings.json`, then `appsettings.{Environment}.json` beside it, then the environment:
//!   the later source wins, per key, compared as .NET compares keys;
//! - botauth's native TOML or JSON is the whole configuration, and only the `BOTAUTH_*`
//!   overrides of the environment apply over it.
//!
//! Every value keeps its [`Origin`] (file and key, `.env` file, environment variable), so that
//! `botauth config` can say why a value won.

use std::path::{Path, PathBuf};

use super::dotenv::read_dotenv;
use super::env::{Explained, apply_overrides, explain, read_env};
use super::file::{appsettings_vars, native_json, native_toml, no_appsettings, read_appsettings};
use super::{BotAuthConfig, EnvVars};
use crate::{Error, Result};

/// The environment variable that names the configuration file.
pub(crate) const BOTAUTH_CONFIG: &str = "BOTAUTH_CONFIG";

/// The environment name variables, in ASP.NET's order (.NET 7+ `WebApplicationBuilder`:
/// `DOTNET_` wins over `ASPNETCORE_`), and the name when neither is set.
const ENVIRONMENT_NAME_KEYS: [&str; 2] = ["DOTNET_ENVIRONMENT", "ASPNETCORE_ENVIRONMENT"];
const DEFAULT_ENVIRONMENT_NAME: &str = "Production";

/// Reads a [`BotAuthConfig`] from the environment and configuration files, with the environment and
/// the working directory as inputs, so that tests (and applications that keep their settings
/// elsewhere) can inject both.
///
/// [`BotAuthConfig::from_env`] is `ConfigLoader::from_process().load()` and
/// [`BotAuthConfig::from_file`] is `ConfigLoader::from_process().file(path).load()`.
///
/// # Which sources, in which order (later wins, per key)
///
/// | configuration file | sources |
/// |---|---|
/// | none | `.env` in the working directory (if any), then the environment |
/// | a `.env` file | that file, then the environment |
/// | `appsettings.json` | the file, then `appsettings.{Environment}.json` beside it (if any), then the environment |
/// | botauth TOML or JSON | the file, then the environment's `BOTAUTH_*` overrides |
///
/// The configuration file is [`ConfigLoader::file`], else the file named by `BOTAUTH_CONFIG`
/// (relative paths are taken from the working directory). The environment name is
/// `DOTNET_ENVIRONMENT`, else `ASPNETCORE_ENVIRONMENT`, else `Production`.
///
/// ```
/// use botauth_core::config::{ConfigLoader, EnvVars};
///
/// let dir = std::env::temp_dir().join(format!("botauth-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// std::fs::write(dir.join(".env"), "MicrosoftAppId=app\nMicrosoftAppPassword='from .env'\n")?;
/// let env = EnvVars::from_iter([("MicrosoftAppPassword", "from the environment")]);
/// let loader = ConfigLoader::new().env(env).dir(&dir);
/// let vars = loader.vars()?;
/// assert_eq!(vars.get("MicrosoftAppId"), Some("app"));
/// assert_eq!(vars.get("MicrosoftAppPassword"), Some("from the environment"));
/// assert_eq!(loader.load()?.client_id.as_deref(), Some("app"));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    env: EnvVars,
    dir: PathBuf,
    file: Option<PathBuf>,
}

impl Default for ConfigLoader {
    fn default() -> Self {
        ConfigLoader::new()
    }
}

/// What a configuration file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    DotEnv,
    Toml,
    Json,
}

/// The sources read, before the dialect readers run.
enum Sources {
    /// Flattened keys for the dialect readers; `appsettings` names the file when the keys came
    /// from `appsettings.json` (for its "no settings" error).
    Vars {
        vars: EnvVars,
        appsettings: Option<String>,
    },
    /// A native file, already deserialized (the overrides are not applied yet).
    Native(Box<BotAuthConfig>),
}

impl ConfigLoader {
    /// A loader with an empty environment, the current directory (`.`) as working directory and
    /// no configuration file.
    pub fn new() -> Self {
        ConfigLoader {
            env: EnvVars::new(),
            dir: PathBuf::from("."),
            file: None,
        }
    }

    /// A loader of the process: its environment variables and its working directory.
    pub fn from_process() -> Self {
        let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        ConfigLoader::new().env(EnvVars::from_process()).dir(dir)
    }

    /// Uses `env` as the environment variables (replacing the process's, or the empty ones).
    #[must_use]
    pub fn env(mut self, env: EnvVars) -> Self {
        self.env = env;
        self
    }

    /// Uses `dir` as the working directory: where `.env` is looked for, and what relative paths
    /// of [`ConfigLoader::file`] and `BOTAUTH_CONFIG` start from.
    #[must_use]
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// Reads this configuration file (`.env`, `.toml` or `.json`; see [`BotAuthConfig::from_file`])
    /// instead of the one `BOTAUTH_CONFIG` names or the working directory's `.env`.
    #[must_use]
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// The keys the dialect readers see, merged from every source with later sources winning,
    /// each with its [`Origin`](crate::config::Origin). For a native TOML or JSON file, which is read into the model
    /// directly, these are the environment variables the `BOTAUTH_*` overrides come from.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the file that cannot be read or parsed (line and column, never
    /// the file's contents).
    pub fn vars(&self) -> Result<EnvVars> {
        match self.sources()? {
            Sources::Vars { vars, .. } => Ok(vars),
            Sources::Native(_) => Ok(self.env.clone()),
        }
    }

    /// Reads the configuration: the sources of [`ConfigLoader::vars`] through the dialect
    /// readers (detecting the dialect, see [`BotAuthConfig::from_vars`]), or the native file with
    /// the `BOTAUTH_*` overrides of the environment over it.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the file for I/O and parse errors, or the key at fault (as the
    /// dialect spells it).
    pub fn load(&self) -> Result<BotAuthConfig> {
        match self.sources()? {
            Sources::Vars {
                vars,
                appsettings: Some(shown),
            } => read_appsettings(&vars, &shown),
            Sources::Vars {
                vars,
                appsettings: None,
            } => read_env(None, &vars),
            Sources::Native(mut config) => {
                for warning in apply_overrides(&mut config, &self.env)? {
                    tracing::warn!("botauth: {warning}");
                }
                Ok(*config)
            }
        }
    }

    /// Like [`ConfigLoader::load`], with where each setting came from and the warnings, as
    /// [`BotAuthConfig::explain_vars`] gives them (for `botauth config`). Nothing is logged. A
    /// native file's settings have no [`Provenance`](super::Provenance) entries: the whole
    /// file is the source.
    ///
    /// # Errors
    ///
    /// As [`ConfigLoader::load`].
    pub fn explain(&self) -> Result<Explained> {
        match self.sources()? {
            Sources::Vars {
                vars,
                appsettings: Some(shown),
            } => {
                let dialect = super::env::detect(&vars).ok_or_else(|| no_appsettings(&shown))?;
                explain(Some(dialect), &vars)
            }
            Sources::Vars {
                vars,
                appsettings: None,
            } => explain(None, &vars),
            Sources::Native(mut config) => {
                let warnings = apply_overrides(&mut config, &self.env)?;
                Ok(Explained {
                    config: *config,
                    sources: Vec::new(),
                    warnings,
                    notes: Vec::new(),
                })
            }
        }
    }

    /// The configuration file to read, as the user wrote it.
    fn named_file(&self) -> Option<PathBuf> {
        self.file
            .clone()
            .or_else(|| self.env.get(BOTAUTH_CONFIG).map(PathBuf::from))
    }

    fn sources(&self) -> Result<Sources> {
        let Some(named) = self.named_file() else {
            let mut vars = self.env.clone();
            let dotenv = self.dir.join(".env");
            if dotenv.is_file() {
                vars.fill_from(read_dotenv(&dotenv, &dotenv.display().to_string())?);
            }
            return Ok(Sources::Vars {
                vars,
                appsettings: None,
            });
        };
        // Errors name the file as the user wrote it; origins carry the path that was opened.
        let shown = named.display().to_string();
        let path = if named.is_absolute() {
            named.clone()
        } else {
            self.dir.join(&named)
        };
        let kind = kind_of(&path).ok_or_else(|| {
            Error::config(
                &shown,
                "unsupported configuration file type: use a .env, .toml or .json file",
            )
        })?;
        tracing::debug!(path = %shown, ?kind, "botauth: reading configuration file");
        match kind {
            Kind::DotEnv => {
                let mut vars = self.env.clone();
                vars.fill_from(read_dotenv(&path, &shown)?);
                Ok(Sources::Vars {
                    vars,
                    appsettings: None,
                })
            }
            Kind::Toml => Ok(Sources::Native(Box::new(native_toml(
                &read_text(&path, &shown)?,
                &shown,
            )?))),
            Kind::Json => {
                let text = read_text(&path, &shown)?;
                let file = appsettings_vars(&text, &path, &shown)?;
                if !file.has_appsettings_section && !is_appsettings_name(&path) {
                    // botauth's own JSON: comments and trailing commas are blanked in place, so
                    // serde's positions still point into the file.
                    let text = super::file::strip_json_extensions(&text).unwrap_or(text);
                    return Ok(Sources::Native(Box::new(native_json(&text, &shown)?)));
                }
                let mut vars = file.vars;
                if let Some(layer) = self.environment_file(&path)? {
                    vars.overlay(layer);
                }
                vars.overlay(self.env.clone());
                Ok(Sources::Vars {
                    vars,
                    appsettings: Some(shown),
                })
            }
        }
    }

    /// The environment name, as ASP.NET picks it.
    fn environment_name(&self) -> &str {
        ENVIRONMENT_NAME_KEYS
            .iter()
            .find_map(|key| self.env.get(key))
            .unwrap_or(DEFAULT_ENVIRONMENT_NAME)
    }

    /// `appsettings.{Environment}.json` beside `appsettings.json`, flattened, when it exists. Only
    /// a file named `appsettings.json` (any case) has one, as in ASP.NET.
    fn environment_file(&self, base: &Path) -> Result<Option<EnvVars>> {
        let Some(base_name) = base
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| n.eq_ignore_ascii_case("appsettings.json"))
        else {
            return Ok(None);
        };
        // `appsettings` as the base file spells it (an ASCII match, so the cut is at a boundary).
        let stem = &base_name[..base_name.len() - ".json".len()];
        let name = format!("{stem}.{}.json", self.environment_name());
        let path = base.with_file_name(&name);
        if !path.is_file() {
            tracing::debug!(path = %path.display(), "botauth: no environment settings file");
            return Ok(None);
        }
        let shown = path.display().to_string();
        tracing::debug!(path = %shown, "botauth: reading environment settings file");
        let text = read_text(&path, &shown)?;
        Ok(Some(appsettings_vars(&text, &path, &shown)?.vars))
    }
}

fn kind_of(path: &Path) -> Option<Kind> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    if name.ends_with(".toml") {
        Some(Kind::Toml)
    } else if name.ends_with(".json") {
        Some(Kind::Json)
    } else if name == ".env" || name.starts_with(".env.") || name.ends_with(".env") {
        Some(Kind::DotEnv)
    } else {
        None
    }
}

/// `appsettings.json`, `appsettings.Development.json`, …: .NET settings even without a section
/// botauth knows (the section may come from the environment file or the environment).
fn is_appsettings_name(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.get(..="appsettings".len())
            .is_some_and(|p| p.eq_ignore_ascii_case("appsettings."))
    })
}

pub(super) fn read_text(path: &Path, shown: &str) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(shown, format!("cannot read the file: {e}")))?;
    // Visual Studio saves appsettings.json with a byte order mark; .NET skips it.
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_owned(),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::Secret;
    use crate::config::{CredentialConfig, Dialect, Origin};

    const APP: &str = "00000000-0000-0000-0000-00000000b07a";
    const FIXTURE_SECRET: &str = "fixture~Secret+value/with=odd_chars";

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn loader(dir: &Path, env: &[(&str, &str)]) -> ConfigLoader {
        ConfigLoader::new()
            .env(env.iter().copied().collect())
            .dir(dir)
    }

    fn config_error(r: Result<impl std::fmt::Debug>) -> (String, String) {
        match r {
            Err(Error::Config { key, message }) => (key, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn secret_of(c: &BotAuthConfig) -> &str {
        match &c.credentials[0] {
            CredentialConfig::ClientSecret { secret } => secret.expose_secret(),
            other => panic!("{other:?}"),
        }
    }

    fn layered_fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/config/files/layered")
    }

    // ----- .env ---------------------------------------------------------------------------------

    const DOTENV: &str = "# A comment line\n\
        export MicrosoftAppId=00000000-0000-0000-0000-00000000b07a\n\
        MicrosoftAppPassword=\"a b\" # c\n\
        SINGLE='x $y \"z\" # not a comment'\n\
        PLAIN=value # trailing comment\n\
        \n\
        EMPTY=\n\
        MULTI=\"line1\n\
        line2\"\n";

    #[test]
    fn dotenv_quoting_and_comments() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), ".env", DOTENV);
        let l = loader(dir.path(), &[]);
        let vars = l.vars().unwrap();
        assert_eq!(vars.get("MicrosoftAppId"), Some(APP));
        assert_eq!(vars.get("MicrosoftAppPassword"), Some("a b"));
        assert_eq!(vars.get("SINGLE"), Some("x $y \"z\" # not a comment"));
        assert_eq!(vars.get("PLAIN"), Some("value"));
        assert_eq!(vars.get("EMPTY"), None);
        assert!(vars.is_blank("EMPTY", true));
        assert_eq!(vars.get("MULTI"), Some("line1\nline2"));
        assert_eq!(vars.len(), 6);
        assert_eq!(
            vars.origin("MicrosoftAppPassword"),
            Some(&Origin::DotEnv { path })
        );
        let c = l.load().unwrap();
        assert_eq!(c.dialect, Dialect::BotFramework);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(secret_of(&c), "a b");
    }

    #[test]
    fn environment_beats_dotenv() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            ".env",
            "MicrosoftAppId=00000000-0000-0000-0000-00000000b07a\nMICROSOFTAPPPASSWORD=from-dotenv\n",
        );
        let l = loader(dir.path(), &[("MicrosoftAppPassword", "from-env")]);
        let vars = l.vars().unwrap();
        assert_eq!(vars.get_ci("MicrosoftAppPassword"), Some("from-env"));
        assert_eq!(vars.get("MICROSOFTAPPPASSWORD"), None);
        assert_eq!(
            vars.origin("MicrosoftAppPassword"),
            Some(&Origin::Environment)
        );
        assert_eq!(
            vars.origin("MicrosoftAppId"),
            Some(&Origin::DotEnv { path })
        );
        assert_eq!(secret_of(&l.load().unwrap()), "from-env");
    }

    #[test]
    fn without_dotenv_the_environment_alone() {
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("CLIENT_ID", "a"),
            ("CLIENT_SECRET", "s"),
            ("TENANT_ID", "t.example"),
        ];
        let l = loader(dir.path(), &env);
        assert_eq!(l.vars().unwrap(), env.iter().copied().collect());
        assert_eq!(l.load().unwrap().dialect, Dialect::Botas);
        // A directory named `.env` is not a file to read.
        std::fs::create_dir(dir.path().join(".env")).unwrap();
        assert_eq!(l.vars().unwrap().len(), 3);
    }

    #[test]
    fn malformed_dotenv_names_the_file_and_line() {
        let cases = [
            (
                "A=1\n# c\nBAD LINE=s3cr3t\n",
                "invalid .env line 3: write KEY=value",
            ),
            (
                "A=1\nB=s3cr3t value\nC=2\n",
                "invalid .env line 2: write KEY=value",
            ),
            (
                "A=1\r\nB=s3cr3t value\r\n",
                "invalid .env line 2: write KEY=value",
            ),
            (
                "A=1\n\nB=\"s3cr3t\nC=2\n",
                "invalid .env entry at line 3: a quoted value is not closed",
            ),
            (
                "A=1\nB='s3cr3t",
                "invalid .env entry at line 2: a quoted value is not closed",
            ),
        ];
        for (text, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let path = write(dir.path(), ".env", text);
            let (key, message) = config_error(loader(dir.path(), &[]).load());
            assert_eq!(key, path.display().to_string(), "{text:?}");
            assert!(message.starts_with(expected), "{text:?}: {message}");
            assert!(!message.contains("s3cr3t"), "{message}");
        }
    }

    #[test]
    fn a_key_twice_in_dotenv_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), ".env", "A=first\nA=second\n");
        assert_eq!(
            loader(dir.path(), &[]).vars().unwrap().get("A"),
            Some("first")
        );
    }

    // ----- BOTAUTH_CONFIG -----------------------------------------------------------------------

    const NATIVE_TOML: &str = "client_id = \"00000000-0000-0000-0000-00000000b07a\"\n\
        tenant_id = \"11111111-2222-3333-4444-555555555555\"\n\
        [[credentials]]\n\
        type = \"client_secret\"\n\
        secret = \"toml-secret\"\n";

    #[test]
    fn botauth_config_names_each_file_type() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            ".env",
            "MicrosoftAppId=cwd\nMicrosoftAppPassword=cwd-pw\nONLY_IN_CWD=1\n",
        );
        write(
            d,
            "conf/bot.env",
            "MicrosoftAppId=named\nMicrosoftAppPassword=named-pw\n",
        );
        write(d, "conf/bot.toml", NATIVE_TOML);
        write(
            d,
            "conf/bot.json",
            "{\"client_id\": \"a\", \"tenant_id\": \"t.example\", // botauth's own JSON\n \
             \"credentials\": [{\"type\": \"managed_identity\"},],}",
        );
        write(
            d,
            "settings/appsettings.json",
            "{\"MicrosoftAppId\": \"json\", \"MicrosoftAppPassword\": \"json-pw\"}",
        );

        let named = |file: &str| loader(d, &[(BOTAUTH_CONFIG, file)]);
        // The cwd `.env` alone.
        let c = loader(d, &[]).load().unwrap();
        assert_eq!(c.client_id.as_deref(), Some("cwd"));

        let l = named("conf/bot.env");
        let vars = l.vars().unwrap();
        assert_eq!(vars.get("ONLY_IN_CWD"), None);
        assert_eq!(
            vars.origin("MicrosoftAppId"),
            Some(&Origin::DotEnv {
                path: d.join("conf/bot.env")
            })
        );
        assert_eq!(l.load().unwrap().client_id.as_deref(), Some("named"));

        let c = named("conf/bot.toml").load().unwrap();
        assert_eq!(c.dialect, Dialect::Native);
        assert_eq!(secret_of(&c), "toml-secret");

        let c = named("conf/bot.json").load().unwrap();
        assert_eq!(c.dialect, Dialect::Native);
        assert_eq!(c.client_id.as_deref(), Some("a"));

        let abs = d.join("settings/appsettings.json");
        let c = named(abs.to_str().unwrap()).load().unwrap();
        assert_eq!(c.dialect, Dialect::BotFramework);
        assert_eq!(c.client_id.as_deref(), Some("json"));

        // `.file` beats BOTAUTH_CONFIG.
        let c = named("conf/bot.toml").file("conf/bot.env").load().unwrap();
        assert_eq!(c.client_id.as_deref(), Some("named"));

        let (key, message) = config_error(named("conf/missing.toml").load());
        assert_eq!(key, "conf/missing.toml");
        assert!(message.starts_with("cannot read the file: "), "{message}");
        let (key, message) = config_error(named("conf/bot.yaml").load());
        assert_eq!(key, "conf/bot.yaml");
        assert_eq!(
            message,
            "unsupported configuration file type: use a .env, .toml or .json file"
        );
    }

    #[test]
    fn file_kinds_by_name() {
        for (name, kind) in [
            (".env", Some(Kind::DotEnv)),
            (".env.local", Some(Kind::DotEnv)),
            ("bot.env", Some(Kind::DotEnv)),
            ("bot.TOML", Some(Kind::Toml)),
            ("appsettings.Development.json", Some(Kind::Json)),
            (".env.json", Some(Kind::Json)),
            ("bot.yaml", None),
            ("environment", None),
        ] {
            assert_eq!(kind_of(Path::new(name)), kind, "{name}");
        }
        assert!(is_appsettings_name(Path::new(
            "/x/AppSettings.Staging.json"
        )));
        assert!(!is_appsettings_name(Path::new("/x/appsettings-old.json")));
    }

    #[test]
    fn native_files_take_the_botauth_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let toml = write(dir.path(), "bot.toml", NATIVE_TOML);
        let json = write(
            dir.path(),
            "bot.json",
            "{\"client_id\": \"a\", \"tenant_id\": \"t.example\", \"credentials\": [{\"type\": \"managed_identity\"}]}",
        );
        for file in [&toml, &json] {
            let env = [("BOTAUTH_AUTHORITY_HOST", "http://127.0.0.1:8400")];
            let c = loader(dir.path(), &env).file(file).load().unwrap();
            assert_eq!(c.cloud.authority_host(), "http://127.0.0.1:8400");
            let c = loader(dir.path(), &[]).file(file).load().unwrap();
            assert_eq!(
                c.cloud.authority_host(),
                "https://login.microsoftonline.com"
            );
            let env = [("BOTAUTH_AUTHORITY_HOST", "http://login.example")];
            let (key, _) = config_error(loader(dir.path(), &env).file(file).load());
            assert_eq!(key, "BOTAUTH_AUTHORITY_HOST");
        }
        // What `vars` shows for a native file: the environment the overrides come from.
        let env = [("BOTAUTH_AUTHORITY_HOST", "http://127.0.0.1:8400")];
        let vars = loader(dir.path(), &env).file(&toml).vars().unwrap();
        assert_eq!(vars, env.iter().copied().collect());
    }

    // ----- appsettings layering -----------------------------------------------------------------

    #[test]
    fn appsettings_layering_per_key() {
        let dir = layered_fixtures();
        let base = dir.join("appsettings.json");
        let development = dir.join("appsettings.Development.json");
        let l = loader(
            &dir,
            &[
                ("DOTNET_ENVIRONMENT", "Development"),
                ("AzureAd__ClientCredentials__0__ClientSecret", "from-env"),
            ],
        )
        .file("appsettings.json");
        let vars = l.vars().unwrap();
        // Only in the base file.
        assert_eq!(vars.get_ci("AzureAd:ClientId"), Some(APP));
        assert_eq!(
            vars.origin("AzureAd__ClientId"),
            Some(&Origin::File {
                path: base.clone(),
                key: "AzureAd:ClientId".into()
            })
        );
        assert_eq!(
            vars.origin("AzureAd__ClientCredentials__0__SourceType"),
            Some(&Origin::File {
                path: base.clone(),
                key: "AzureAd:ClientCredentials:0:SourceType".into()
            })
        );
        // The Development file wins over the base, in its own spelling.
        assert_eq!(vars.get_ci("AzureAd:TenantId"), Some("development.example"));
        assert_eq!(vars.origin("AzureAd__TenantId"), None);
        assert_eq!(
            vars.origin("azuread__tenantid"),
            Some(&Origin::File {
                path: development,
                key: "azuread:tenantid".into()
            })
        );
        // The environment wins over both.
        assert_eq!(
            vars.get_ci("AzureAd:ClientCredentials:0:ClientSecret"),
            Some("from-env")
        );
        assert_eq!(
            vars.origin("AzureAd__ClientCredentials__0__ClientSecret"),
            Some(&Origin::Environment)
        );
        let c = l.load().unwrap();
        assert_eq!(c.dialect, Dialect::IdentityWeb);
        assert_eq!(c.tenant_id.as_deref(), Some("development.example"));
        assert_eq!(
            c.credentials,
            [CredentialConfig::ClientSecret {
                secret: Secret::new("from-env")
            }]
        );
    }

    #[test]
    fn explain_tells_where_each_setting_came_from() {
        let dir = layered_fixtures();
        let l = loader(
            &dir,
            &[
                ("DOTNET_ENVIRONMENT", "Development"),
                ("AzureAd__ClientCredentials__0__ClientSecret", "from-env"),
            ],
        )
        .file("appsettings.json");
        let explained = l.explain().unwrap();
        assert_eq!(explained.config, l.load().unwrap());
        // By the key as it is spelled where it won (the setting names are env.rs's).
        let origin_of = |key: &str| {
            explained
                .sources
                .iter()
                .find(|p| p.key == key)
                .map(|p| p.origin.clone())
        };
        assert_eq!(
            origin_of("AzureAd__ClientId"),
            Some(Origin::File {
                path: dir.join("appsettings.json"),
                key: "AzureAd:ClientId".into()
            })
        );
        assert_eq!(
            origin_of("azuread__tenantid"),
            Some(Origin::File {
                path: dir.join("appsettings.Development.json"),
                key: "azuread:tenantid".into()
            })
        );
        assert_eq!(
            origin_of("AzureAd__ClientCredentials__0__ClientSecret"),
            Some(Origin::Environment)
        );
        assert_eq!(origin_of("AzureAd__TenantId"), None);
    }

    #[test]
    fn environment_name_precedence() {
        let dir = layered_fixtures();
        let cases: [(&[(&str, &str)], &str); 5] = [
            (&[], "production.example"),
            (
                &[("ASPNETCORE_ENVIRONMENT", "Development")],
                "development.example",
            ),
            (&[("DOTNET_ENVIRONMENT", "Staging")], "staging.example"),
            (
                &[
                    ("DOTNET_ENVIRONMENT", "Staging"),
                    ("ASPNETCORE_ENVIRONMENT", "Development"),
                ],
                "staging.example",
            ),
            // No appsettings.Test.json: the base file alone.
            (&[("DOTNET_ENVIRONMENT", "Test")], "base.example"),
        ];
        for (env, tenant) in cases {
            let l = loader(&dir, env).file(dir.join("appsettings.json"));
            assert_eq!(
                l.load().unwrap().tenant_id.as_deref(),
                Some(tenant),
                "{env:?}"
            );
        }
        // Only `appsettings.json` has environment files.
        let l =
            loader(&dir, &[("DOTNET_ENVIRONMENT", "Development")]).file("appsettings.Staging.json");
        assert_eq!(
            l.vars().unwrap().get_ci("AzureAd:TenantId"),
            Some("staging.example")
        );
    }

    #[test]
    fn appsettings_sections_may_come_from_later_layers() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "appsettings.json",
            "{\"Logging\": {\"LogLevel\": {\"Default\": \"Warning\"}}}",
        );
        // Nothing anywhere: the error names the file as given.
        let (key, message) = config_error(loader(d, &[]).file("appsettings.json").load());
        assert_eq!(key, "appsettings.json");
        assert!(
            message.starts_with("no botauth settings found"),
            "{message}"
        );
        // The section in the environment file.
        write(
            d,
            "appsettings.Production.json",
            "{\"MicrosoftAppId\": \"prod\", \"MicrosoftAppPassword\": \"pw\"}",
        );
        let c = loader(d, &[]).file("appsettings.json").load().unwrap();
        assert_eq!(c.client_id.as_deref(), Some("prod"));
        // The environment over both, spelled with `__`.
        let env = [("MICROSOFTAPPID", "env")];
        let c = loader(d, &env).file("appsettings.json").load().unwrap();
        assert_eq!(c.client_id.as_deref(), Some("env"));
    }

    #[test]
    fn environment_file_errors_name_that_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "appsettings.json",
            "{\"MicrosoftAppId\": \"a\", \"MicrosoftAppPassword\": \"pw\"}",
        );
        let dev = write(
            d,
            "appsettings.Development.json",
            "{\"MicrosoftAppPassword\": \"s3cr3t\",\n \"microsoftapppassword\": \"s3cr3t\"}",
        );
        let l = loader(d, &[("DOTNET_ENVIRONMENT", "Development")]).file("appsettings.json");
        let (key, message) = config_error(l.load());
        assert_eq!(key, dev.display().to_string());
        assert_eq!(
            message,
            "duplicate key `microsoftapppassword` at line 2: it is already set (as \
             `MicrosoftAppPassword`: keys are case-insensitive); keep one of them"
        );
    }

    #[test]
    fn from_file_reads_dotenv_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "bot.env",
            "BOTAUTH_TEST_ONLY_CLIENT_ID=x\nMicrosoftAppId=00000000-0000-0000-0000-00000000b07a\n\
             MicrosoftAppPassword='s3cr3t~Value+/='\n",
        );
        let c = BotAuthConfig::from_file(&path).unwrap();
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(secret_of(&c), "s3cr3t~Value+/=");
    }

    #[test]
    fn fixture_secret_is_the_documented_one() {
        let l = loader(&layered_fixtures(), &[]).file("appsettings.json");
        assert_eq!(
            l.vars()
                .unwrap()
                .get_ci("AzureAd:ClientCredentials:0:ClientSecret"),
            Some(FIXTURE_SECRET)
        );
    }
}
