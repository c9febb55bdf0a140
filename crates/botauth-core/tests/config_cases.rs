//! The configuration cases on disk: `fixtures/config/cases/<case>/` holds the input — `vars.env`
//! (one `KEY=value` per line, taken verbatim; `#` starts a comment line) or `appsettings.json` —
//! and `expect.toml`:
//!
//! ```toml
//! about = "what the case shows"
//! dialect = "bot_framework"     # optional: read with from_vars_as instead of detecting
//! warnings = ["substring", …]   # one per expected warning, in order (none when absent)
//! notes = ["substring", …]      # likewise for INFO notes
//! [config]                      # the expected model, in botauth's TOML format …
//! dialect = "botas"             # … plus the dialect it reports
//! [error]                       # or the expected error
//! key = "MicrosoftAppPassword"
//! message = ["substring", …]
//! ```
//!
//! Every case also checks that no value containing `s3cr3t` (the fixtures' marker for secrets)
//! appears in an error, a warning, a note or the configuration's `Debug`.

#![allow(clippy::unwrap_used)] // helpers of the test below: a missing fixture is the failure

use std::path::{Path, PathBuf};

use botauth_core::Error;
use botauth_core::config::{BotAuthConfig, Dialect, EnvVars};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    #[allow(dead_code)]
    about: String,
    #[serde(default)]
    dialect: Option<Dialect>,
    #[serde(default)]
    warnings: Vec<String>,
    #[serde(default)]
    notes: Vec<String>,
    #[serde(default)]
    config: Option<toml::Table>,
    #[serde(default)]
    error: Option<ExpectError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectError {
    key: String,
    #[serde(default)]
    message: Vec<String>,
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/config/cases")
}

fn read_vars(path: &Path) -> EnvVars {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("{path:?}: `{l}`"));
            (k.to_owned(), v.to_owned())
        })
        .collect()
}

/// The expected model: `[config]` read as botauth's TOML, with the dialect it names.
fn expected_config(table: &toml::Table) -> BotAuthConfig {
    let mut table = table.clone();
    let dialect: Dialect = table
        .remove("dialect")
        .map(|d| d.try_into().unwrap())
        .unwrap_or(Dialect::Native);
    let mut config: BotAuthConfig = toml::Value::Table(table)
        .try_into()
        .unwrap_or_else(|e| panic!("[config] is not a model: {e}"));
    config.dialect = dialect;
    config
}

struct Outcome {
    result: Result<BotAuthConfig, Error>,
    warnings: Vec<String>,
    notes: Vec<String>,
}

fn run(dir: &Path, expect: &Expect) -> Outcome {
    let vars_path = dir.join("vars.env");
    if vars_path.exists() {
        let vars = read_vars(&vars_path);
        if let Some(dialect) = expect.dialect {
            return Outcome {
                result: BotAuthConfig::from_vars_as(dialect, vars),
                warnings: Vec::new(),
                notes: Vec::new(),
            };
        }
        return match BotAuthConfig::explain_vars(&vars) {
            Ok(e) => Outcome {
                result: Ok(e.config),
                warnings: e.warnings,
                notes: e.notes,
            },
            Err(e) => Outcome {
                result: Err(e),
                warnings: Vec::new(),
                notes: Vec::new(),
            },
        };
    }
    let json = std::fs::read_to_string(dir.join("appsettings.json")).unwrap();
    Outcome {
        result: BotAuthConfig::from_appsettings_json(&json),
        warnings: Vec::new(),
        notes: Vec::new(),
    }
}

fn check_case(dir: &Path) -> Result<(), String> {
    let expect: Expect = toml::from_str(&std::fs::read_to_string(dir.join("expect.toml")).unwrap())
        .map_err(|e| format!("expect.toml: {e}"))?;
    let outcome = run(dir, &expect);
    let mut seen = String::new();
    match (&outcome.result, &expect.config, &expect.error) {
        (Ok(config), Some(table), None) => {
            let wanted = expected_config(table);
            if *config != wanted {
                return Err(format!(
                    "config differs:\n got: {config:#?}\nwant: {wanted:#?}"
                ));
            }
            seen.push_str(&format!("{config:?}"));
        }
        (Err(Error::Config { key, message }), None, Some(want)) => {
            if *key != want.key {
                return Err(format!(
                    "error key `{key}`, want `{}` ({message})",
                    want.key
                ));
            }
            for part in &want.message {
                if !message.contains(part.as_str()) {
                    return Err(format!("error message lacks `{part}`: {message}"));
                }
            }
            seen.push_str(message);
        }
        (result, _, _) => return Err(format!("unexpected outcome {result:?}")),
    }
    for (what, got, want) in [
        ("warnings", &outcome.warnings, &expect.warnings),
        ("notes", &outcome.notes, &expect.notes),
    ] {
        let matches =
            got.len() == want.len() && got.iter().zip(want).all(|(g, w)| g.contains(w.as_str()));
        if !matches {
            return Err(format!("{what}: got {got:#?}, want {want:#?}"));
        }
        seen.push_str(&got.join("\n"));
    }
    if seen.contains("s3cr3t") {
        return Err(format!("a secret leaked: {seen}"));
    }
    Ok(())
}

#[test]
fn every_configuration_case_on_disk() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 10,
        "the cases directory is missing or nearly empty"
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            check_case(dir)
                .err()
                .map(|e| format!("{}: {e}", dir.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n\n")
    );
}

/// The README's list of keys is the tables' list (regenerate with `botauth config --keys`).
#[test]
fn the_readme_lists_every_key_of_the_tables() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let block = readme
        .split_once("<!-- keys:begin -->\n")
        .and_then(|(_, rest)| rest.split_once("<!-- keys:end -->"))
        .map(|(block, _)| block)
        .expect("README.md has no <!-- keys:begin --> … <!-- keys:end --> block");
    assert_eq!(
        block,
        botauth_core::internal::supported_keys_markdown(),
        "README.md's key list is out of date: replace the block with `cargo run -p botauth-cli -- config --keys`"
    );
}
