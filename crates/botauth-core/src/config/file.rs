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

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::env::{detect, read_env};
use super::model::BotAuthConfig;
use super::validate::{KeyNames, validate};
use super::vars::normalize_key;
use super::{ConfigLoader, EnvVars, Origin};
use crate::{Error, Result};

const TOML_ORIGIN: &str = "<toml>";
const JSON_ORIGIN: &str = "<json>";
pub(crate) const APPSETTINGS_ORIGIN: &str = "<appsettings.json>";

/// Top-level keys that mark a JSON file as .NET `appsettings.json` rather than botauth's own format.
const APPSETTINGS_SECTIONS: [&str; 3] = ["AzureAd", "Connections", "MicrosoftAppId"];

const CREDENTIAL_TYPES: [&str; 6] = [
    "client_secret",
    "certificate",
    "managed_identity",
    "federated_managed_identity",
    "workload_identity",
    "custom",
];

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

// ---------------------------------------------------------------------------------------------
// JSON as ASP.NET reads it.

/// A JSON configuration file, flattened.
#[derive(Debug)]
pub(crate) struct JsonFile {
    /// Every non-null scalar: key segments joined with `__`, [`Origin::File`] with `:`.
    pub(crate) vars: EnvVars,
    /// Whether the document has a top-level `AzureAd`, `Connections` or `MicrosoftAppId` key.
    pub(crate) has_appsettings_section: bool,
}

/// Flattens an `appsettings`-style JSON document (comments and trailing commas allowed). `path`
/// goes into each value's [`Origin::File`]; `shown` names the file in errors.
pub(crate) fn appsettings_vars(text: &str, path: &Path, shown: &str) -> Result<JsonFile> {
    let text = strip_json_extensions(text).map_err(|(offset, what)| {
        let (line, column) = line_column(text, offset);
        Error::config(
            shown,
            format!("invalid JSON at line {line}, column {column}: {what}"),
        )
    })?;
    let state = RefCell::new(Flattened::default());
    let mut de = serde_json::Deserializer::from_str(&text);
    let parsed = Node {
        state: &state,
        path: Vec::new(),
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    let state = state.into_inner();
    if let Err(e) = parsed {
        return Err(match (state.duplicate, state.not_object) {
            (Some((again, first)), _) => {
                let also = if again == first {
                    String::new()
                } else {
                    format!(" (as `{first}`: keys are case-insensitive)")
                };
                Error::config(
                    shown,
                    format!(
                        "duplicate key `{again}` at line {}: it is already set{also}; \
                         keep one of them",
                        e.line()
                    ),
                )
            }
            (None, true) => {
                Error::config(shown, "an appsettings.json document must be a JSON object")
            }
            (None, false) => json_error(&e, shown),
        });
    }
    let is_section = |key: &str, section: &str| key.trim().eq_ignore_ascii_case(section);
    // botauth's own JSON has a `connections` array: only an object of named connections is the
    // Agents SDK's section.
    let has_appsettings_section = state.top_keys.iter().any(|k| {
        APPSETTINGS_SECTIONS
            .iter()
            .any(|s| *s != "Connections" && is_section(k, s))
    }) || state.entries.iter().any(|(segments, _)| {
        is_section(&segments[0], "Connections")
            && segments
                .get(1)
                .is_some_and(|name| name.parse::<u64>().is_err())
    });
    let mut vars = EnvVars::new();
    for (segments, value) in state.entries {
        let origin = Origin::File {
            path: path.to_path_buf(),
            key: segments.join(":"),
        };
        vars.insert_from(segments.join("__"), value, origin);
    }
    Ok(JsonFile {
        vars,
        has_appsettings_section,
    })
}

/// What the [`Node`] visitor collects.
#[derive(Default)]
struct Flattened {
    entries: Vec<(Vec<String>, String)>,
    /// Leaf keys seen so far, normalized (`azuread__clientid`) → as first spelled (`AzureAd:ClientId`).
    seen: HashMap<String, String>,
    top_keys: Vec<String>,
    /// `(key as spelled again, key as spelled first)`: the document is refused.
    duplicate: Option<(String, String)>,
    not_object: bool,
}

/// One JSON value at `path`, flattened the way .NET's `JsonConfigurationFileParser` does: objects
/// and arrays add a segment, scalars become strings, `null` is absent. Like .NET, the duplicate
/// rule applies to the flattened keys: `{"a":{"b":1},"A":{"c":2}}` is two keys, `{"a":1,"A":2}`
/// is an error. The visitor stops at the duplicate, so serde_json's error carries its position.
struct Node<'a> {
    state: &'a RefCell<Flattened>,
    path: Vec<String>,
}

impl Node<'_> {
    fn child(&self, segment: String) -> Self {
        let mut path = self.path.clone();
        path.push(segment);
        Node {
            state: self.state,
            path,
        }
    }

    fn leaf<E: de::Error>(self, value: String) -> std::result::Result<(), E> {
        let mut state = self.state.borrow_mut();
        if self.path.is_empty() {
            state.not_object = true;
            return Err(E::custom("not an object"));
        }
        let spelled = self.path.join(":");
        let normalized = normalize_key(&spelled);
        if let Some(first) = state.seen.get(&normalized) {
            state.duplicate = Some((spelled, first.clone()));
            return Err(E::custom("duplicate key"));
        }
        state.seen.insert(normalized, spelled);
        state.entries.push((self.path, value));
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if self.path.is_empty() {
                self.state.borrow_mut().top_keys.push(key.clone());
            }
            map.next_value_seed(self.child(key))?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        if self.path.is_empty() {
            self.state.borrow_mut().not_object = true;
            return Err(de::Error::custom("not an object"));
        }
        let mut index = 0usize;
        while seq
            .next_element_seed(self.child(index.to_string()))?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        if self.path.is_empty() {
            self.state.borrow_mut().not_object = true;
            return Err(E::custom("not an object"));
        }
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<(), E> {
        self.leaf(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<(), E> {
        self.leaf(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<(), E> {
        self.leaf(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<(), E> {
        self.leaf(v.to_string())
    }
}

/// Blanks `//` and `/* */` comments and drops trailing commas (`[1, 2,]`, `{"a": 1,}`), the two
/// extensions ASP.NET's JSON reader allows, so that serde_json can read the rest. Every removed
/// byte becomes a space and line breaks stay, so serde_json's line and column still point into
/// the user's file. Strings are copied as they are: `"https://login.microsoftonline.com/"` keeps
/// its `//`.
///
/// An unterminated `/*` comment is an error at its byte offset (serde_json would only say "EOF").
pub(crate) fn strip_json_extensions(
    text: &str,
) -> std::result::Result<String, (usize, &'static str)> {
    let src = text.as_bytes();
    let mut out = src.to_vec();
    let mut i = 0;
    let mut in_string = false;
    // The last significant byte outside strings and comments, and where a pending comma is.
    let mut last = 0u8;
    let mut comma: Option<usize> = None;
    while i < src.len() {
        let b = src[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'/' if src.get(i + 1) == Some(&b'/') => {
                while i < src.len() && src[i] != b'\n' && src[i] != b'\r' {
                    out[i] = b' ';
                    i += 1;
                }
                continue;
            }
            b'/' if src.get(i + 1) == Some(&b'*') => {
                let start = i;
                out[i] = b' ';
                out[i + 1] = b' ';
                i += 2;
                loop {
                    if i >= src.len() {
                        return Err((start, "a `/*` comment is not closed"));
                    }
                    if src[i] == b'*' && src.get(i + 1) == Some(&b'/') {
                        out[i] = b' ';
                        out[i + 1] = b' ';
                        i += 2;
                        break;
                    }
                    if src[i] != b'\n' && src[i] != b'\r' {
                        out[i] = b' ';
                    }
                    i += 1;
                }
                continue;
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            b']' | b'}' => {
                // One trailing comma after a value, as System.Text.Json's AllowTrailingCommas;
                // `[,]` and `[1,,]` stay errors.
                if let Some(at) = comma.take() {
                    out[at] = b' ';
                }
                last = b;
            }
            b',' => {
                comma = (!matches!(last, b'[' | b'{' | b',' | 0)).then_some(i);
                last = b;
            }
            _ => {
                if b == b'"' {
                    in_string = true;
                }
                comma = None;
                last = b;
            }
        }
        i += 1;
    }
    // Only ASCII bytes were replaced, by ASCII spaces, so the text is still UTF-8.
    String::from_utf8(out).map_err(|_| (0, "the file is not UTF-8"))
}

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

fn finish_native(config: BotAuthConfig) -> Result<BotAuthConfig> {
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
fn check_credential_types(value: &Value) -> Result<()> {
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

fn toml_error(e: &toml::de::Error, text: &str, origin: &str) -> Error {
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

fn json_error(e: &serde_json::Error, origin: &str) -> Error {
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
fn line_column(text: &str, offset: usize) -> (usize, usize) {
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
const MODEL_WORDS: &[&str] = &[
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
fn sanitize(message: &str) -> String {
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
    use std::io::Write;
    use std::path::PathBuf;

    use super::*;
    use crate::config::{CredentialConfig, Dialect, ManagedIdentityId};
    use crate::{Cloud, Secret};

    const APP: &str = "00000000-0000-0000-0000-00000000b07a";
    const TENANT: &str = "11111111-2222-3333-4444-555555555555";
    const SECRET: &str = "s3cr3t~Value+/=";

    fn key_of(r: Result<BotAuthConfig>) -> String {
        match r {
            Err(Error::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn write_file(dir: &tempfile::TempDir, name: &str, contents: &str) -> PathBuf {
        let path = dir.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        path
    }

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

    // ----- appsettings.json ---------------------------------------------------------------------

    fn flat(json: &str) -> EnvVars {
        appsettings_vars(json, Path::new("appsettings.json"), "appsettings.json")
            .unwrap()
            .vars
    }

    fn flat_err(json: &str) -> String {
        match appsettings_vars(json, Path::new("appsettings.json"), "appsettings.json") {
            Err(Error::Config { key, message }) => {
                assert_eq!(key, "appsettings.json");
                message
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn flattening_nested_objects_and_arrays() {
        let env = flat(
            r#"{"AzureAd": {"ClientId": "a", "Nested": {"Deep": {"Key": 5}}, "Flag": true, "Gone": null,
                "ClientCredentials": [{"SourceType": "ClientSecret"}, {"SourceType": "Path", "Extra": [1, "two", -2, 1.5]}]},
                "Top": "t", "Empty": {}, "None": []}"#,
        );
        let keys: Vec<_> = env.keys().collect();
        assert_eq!(
            keys,
            [
                "AzureAd__ClientCredentials__0__SourceType",
                "AzureAd__ClientCredentials__1__Extra__0",
                "AzureAd__ClientCredentials__1__Extra__1",
                "AzureAd__ClientCredentials__1__Extra__2",
                "AzureAd__ClientCredentials__1__Extra__3",
                "AzureAd__ClientCredentials__1__SourceType",
                "AzureAd__ClientId",
                "AzureAd__Flag",
                "AzureAd__Nested__Deep__Key",
                "Top",
            ]
        );
        assert_eq!(env.get("AzureAd__Nested__Deep__Key"), Some("5"));
        assert_eq!(env.get("AzureAd__Flag"), Some("true"));
        assert_eq!(
            env.get("AzureAd__ClientCredentials__1__Extra__1"),
            Some("two")
        );
        assert_eq!(
            env.get("AzureAd__ClientCredentials__1__Extra__2"),
            Some("-2")
        );
        assert_eq!(
            env.get("AzureAd__ClientCredentials__1__Extra__3"),
            Some("1.5")
        );
        assert_eq!(
            env.origin("AzureAd__ClientCredentials__0__SourceType"),
            Some(&Origin::File {
                path: "appsettings.json".into(),
                key: "AzureAd:ClientCredentials:0:SourceType".into()
            })
        );
    }

    #[test]
    fn comments_and_trailing_commas_are_accepted() {
        let json = "{\n  // The bot's identity.\n  \"AzureAd\": {\n    /* the public cloud */ \"Instance\": \"https://login.microsoftonline.com/\",\n    \"ClientCredentials\": [ { \"SourceType\": \"ClientSecret\", }, ],\n    \"Note\": \"/* kept */ // kept\", // trailing comment\n  },\n  /* multi\n     line */\n}\n";
        let env = flat(json);
        assert_eq!(
            env.get("AzureAd__Instance"),
            Some("https://login.microsoftonline.com/")
        );
        assert_eq!(env.get("AzureAd__Note"), Some("/* kept */ // kept"));
        assert_eq!(
            env.get("AzureAd__ClientCredentials__0__SourceType"),
            Some("ClientSecret")
        );
        assert_eq!(env.len(), 3);
    }

    #[test]
    fn stripping_keeps_positions() {
        let json = "{\"a\": \"x//y\", // c\n \"b\": [1, /* é\n */ 2,],\n \"c\\\"//\": 3,}";
        let stripped = strip_json_extensions(json).unwrap();
        assert_eq!(
            stripped,
            "{\"a\": \"x//y\",     \n \"b\": [1,      \n    2 ],\n \"c\\\"//\": 3 }"
        );
        assert_eq!(stripped.len(), json.len());
    }

    #[test]
    fn json_extensions_that_stay_errors() {
        // One trailing comma only, and not in an empty object or array (System.Text.Json's rule).
        for bad in [
            "{\"AzureAd\": [1,,]}",
            "{\"AzureAd\": [,]}",
            "{,}",
            "{\"a\": 1,,}",
        ] {
            let msg = flat_err(bad);
            assert!(msg.starts_with("invalid JSON at line 1"), "{bad}: {msg}");
        }
        assert_eq!(
            strip_json_extensions("{\"a\": 1 /* open\n\n"),
            Err((8, "a `/*` comment is not closed"))
        );
        assert_eq!(
            flat_err("{\"a\": 1,\n /* open\n\n"),
            "invalid JSON at line 2, column 2: a `/*` comment is not closed"
        );
        // A lone slash is not a comment.
        assert!(flat_err("{\"a\": 1 / 2}").starts_with("invalid JSON at line 1, column 9"));
    }

    #[test]
    fn duplicate_keys_are_errors_naming_the_key_and_line() {
        let exact = "{\n  \"AzureAd\": {\n    \"ClientSecret\": \"first-s3cr3t\",\n    \"ClientSecret\": \"second-s3cr3t\"\n  }\n}";
        assert_eq!(
            flat_err(exact),
            "duplicate key `AzureAd:ClientSecret` at line 4: it is already set; keep one of them"
        );
        let case_only =
            "{\"AzureAd\": {\"ClientId\": \"a\"},\n \"azuread\": {\n\n \"CLIENTID\": \"s3cr3t\"}}";
        assert_eq!(
            flat_err(case_only),
            "duplicate key `azuread:CLIENTID` at line 4: it is already set (as `AzureAd:ClientId`: keys \
             are case-insensitive); keep one of them"
        );
        let in_array = "{\"A\": [{\"x\": 1, \"X\": null, \"X\": 2}]}";
        assert_eq!(
            flat_err(in_array),
            "duplicate key `A:0:X` at line 1: it is already set (as `A:0:x`: keys are case-insensitive); \
             keep one of them"
        );
        for json in [exact, case_only] {
            let e = BotAuthConfig::from_appsettings_json(json).unwrap_err();
            assert!(matches!(e, Error::Config { ref key, .. } if key == APPSETTINGS_ORIGIN));
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
        }
        // As in .NET, the rule is on the flattened keys: sections with the same name merge.
        let merged =
            flat("{\"AzureAd\": {\"ClientId\": \"a\"}, \"azuread\": {\"TenantId\": \"t\"}}");
        assert_eq!(merged.get_ci("AzureAd:ClientId"), Some("a"));
        assert_eq!(merged.get_ci("AzureAd:TenantId"), Some("t"));
    }

    #[test]
    fn appsettings_sections_are_recognised() {
        let is = |json: &str| {
            appsettings_vars(json, Path::new("x.json"), "x.json")
                .unwrap()
                .has_appsettings_section
        };
        assert!(is(r#"{"azuread": {}}"#));
        assert!(is(r#"{"MICROSOFTAPPID": null}"#));
        assert!(is(
            r#"{"Connections": {"ServiceConnection": {"Settings": {"ClientId": "a"}}}}"#
        ));
        // botauth's own `connections` is an array of tables.
        assert!(!is(
            r#"{"client_id": "a", "connections": [{"name": "x", "client_id": "b"}]}"#
        ));
        assert!(!is(r#"{"client_id": "a", "connections": []}"#));
    }

    #[test]
    fn a_document_that_is_not_an_object() {
        for json in ["[1]", "\"AzureAd\"", "null", "5"] {
            assert_eq!(
                flat_err(json),
                "an appsettings.json document must be a JSON object",
                "{json}"
            );
        }
    }

    const IDWEB_APPSETTINGS: &str = r#"{
      "Logging": { "LogLevel": { "Default": "Information" } },
      "AllowedHosts": "*",
      "AzureAd": {
        "Instance": "https://login.microsoftonline.com/",
        "TenantId": "11111111-2222-3333-4444-555555555555",
        "ClientId": "00000000-0000-0000-0000-00000000b07a",
        "ClientCredentials": [
          { "SourceType": "SignedAssertionFromManagedIdentity",
            "ManagedIdentityClientId": "99999999-8888-7777-6666-555555555555" },
          { "SourceType": "Path", "CertificateDiskPath": "/certs/bot.pfx", "CertificatePassword": "pfx-pass" },
          { "SourceType": "ClientSecret", "ClientSecret": "s3cr3t~Value+/=" }
        ]
      }
    }"#;

    #[test]
    fn appsettings_identity_web() {
        let c = BotAuthConfig::from_appsettings_json(IDWEB_APPSETTINGS).unwrap();
        assert_eq!(c.dialect, Dialect::IdentityWeb);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(c.cloud, Cloud::Public);
        assert_eq!(
            c.credentials
                .iter()
                .map(CredentialConfig::type_name)
                .collect::<Vec<_>>(),
            ["federated_managed_identity", "certificate", "client_secret"]
        );
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("s3cr3t") && !dbg.contains("pfx-pass"),
            "{dbg}"
        );
    }

    #[test]
    fn appsettings_json_file_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(&dir, "appsettings.json", IDWEB_APPSETTINGS);
        let c = BotAuthConfig::from_file(&path).unwrap();
        assert_eq!(c.dialect, Dialect::IdentityWeb);

        // Top-level `MicrosoftAppId`, any case: Bot Framework.
        let bf = r#"{"microsoftAppId": "00000000-0000-0000-0000-00000000b07a", "MicrosoftAppPassword": "pw",
                     "MicrosoftAppType": "SingleTenant", "MicrosoftAppTenantId": "11111111-2222-3333-4444-555555555555"}"#;
        let path = write_file(&dir, "bf.json", bf);
        let c = BotAuthConfig::from_file(&path).unwrap();
        assert_eq!(c.dialect, Dialect::BotFramework);
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
    }

    #[test]
    fn appsettings_agents_sdk() {
        let json = r#"{
          "Connections": {
            "ServiceConnection": {
              "Settings": {
                "AuthType": "Certificate",
                "ClientId": "00000000-0000-0000-0000-00000000b07a",
                "AuthorityEndpoint": "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555",
                "CertPemFile": "/c/bot.pem",
                "CertKeyFile": "/c/bot.key",
                "Scopes": ["https://api.botframework.com/.default"]
              }
            }
          },
          "ConnectionsMap": [{ "ServiceUrl": "*", "Connection": "ServiceConnection" }]
        }"#;
        let c = BotAuthConfig::from_appsettings_json(json).unwrap();
        assert_eq!(c.dialect, Dialect::AgentsSdk);
        assert_eq!(c.tenant_id.as_deref(), Some(TENANT));
        assert_eq!(c.cloud, Cloud::Public);
        assert!(matches!(c.credentials[0], CredentialConfig::Certificate(_)));
    }

    #[test]
    fn appsettings_errors_name_dialect_keys() {
        let json = r#"{"AzureAd": {"TenantId": "t.example", "ClientId": "a",
                       "ClientCredentials": [{"SourceType": "ClientSecret"}, {"SourceType": "Path"}]}}"#;
        assert_eq!(
            key_of(BotAuthConfig::from_appsettings_json(json)),
            "AzureAd__ClientCredentials__0__ClientSecret"
        );
        let json = r#"{"AzureAd": {"TenantId": "t.example", "ClientId": "a",
                       "ClientCredentials": [{"SourceType": "KeyVault", "KeyVaultUrl": "https://v"}]}}"#;
        assert_eq!(
            key_of(BotAuthConfig::from_appsettings_json(json)),
            "AzureAd__ClientCredentials__0__KeyVaultCertificateName"
        );
        assert_eq!(
            key_of(BotAuthConfig::from_appsettings_json(r#"{"Logging": {}}"#)),
            APPSETTINGS_ORIGIN
        );
        assert_eq!(
            key_of(BotAuthConfig::from_appsettings_json("[1]")),
            APPSETTINGS_ORIGIN
        );
        let e = BotAuthConfig::from_appsettings_json(
            r#"{"AzureAd": {"ClientSecret": "s3cr3t~Value+/=" "#,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("s3cr3t"));
    }

    #[test]
    fn appsettings_token_file_fallback() {
        let json = r#"{"AzureAd": {"TenantId": "t.example", "ClientId": "a",
                "ClientCredentials": [{"SourceType": "SignedAssertionFilePath"}]}}"#;
        let mut vars = flat(json);
        vars.fill_from(
            [("AZURE_FEDERATED_TOKEN_FILE", "/aks/token")]
                .into_iter()
                .collect(),
        );
        let c = read_appsettings(&vars, APPSETTINGS_ORIGIN).unwrap();
        assert_eq!(
            c.credentials,
            [CredentialConfig::WorkloadIdentity {
                token_file: "/aks/token".into()
            }]
        );
        let e = read_appsettings(&flat(json), APPSETTINGS_ORIGIN).unwrap_err();
        assert!(matches!(e, Error::Config { ref key, .. }
            if key == "AzureAd__ClientCredentials__0__SignedAssertionFileDiskPath"));
    }

    #[test]
    fn appsettings_template_with_comments() {
        // The shape of the Identity.Web and Agents templates: comments, trailing commas.
        let json = r#"{
          /*
            The following identity settings need to be configured
            before the project can be successfully executed.
          */
          "AzureAd": {
            "Instance": "https://login.microsoftonline.com/",
            "TenantId": "11111111-2222-3333-4444-555555555555", // your tenant
            "ClientId": "00000000-0000-0000-0000-00000000b07a",
            "ClientCredentials": [
              {
                "SourceType": "ClientSecret",
                "ClientSecret": "s3cr3t~Value+/=", // https://aka.ms/... is not a comment in a string
              },
            ],
          },
          "Logging": { "LogLevel": { "Default": "Information", }, },
        }"#;
        let c = BotAuthConfig::from_appsettings_json(json).unwrap();
        assert_eq!(c.dialect, Dialect::IdentityWeb);
        assert_eq!(c.client_id.as_deref(), Some(APP));
        assert_eq!(
            c.credentials,
            [CredentialConfig::ClientSecret {
                secret: Secret::new(SECRET)
            }]
        );
    }

    #[test]
    fn appsettings_with_botauth_overrides() {
        let json = r#"{"BOTAUTH_AUTHORITY_HOST": "http://127.0.0.1:8400",
                       "MicrosoftAppId": "a", "MicrosoftAppPassword": "pw"}"#;
        let c = BotAuthConfig::from_appsettings_json(json).unwrap();
        assert_eq!(c.cloud.authority_host(), "http://127.0.0.1:8400");
        let json = r#"{"BOTAUTH_AUTHORITY_HOST": "http://login.example",
                       "MicrosoftAppId": "a", "MicrosoftAppPassword": "pw"}"#;
        assert_eq!(
            key_of(BotAuthConfig::from_appsettings_json(json)),
            "BOTAUTH_AUTHORITY_HOST"
        );
    }
}
