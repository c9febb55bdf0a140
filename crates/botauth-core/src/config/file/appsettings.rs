//! .NET `appsettings.json` as ASP.NET reads it: comments and trailing commas, case-insensitive
//! keys, arrays flattened to `:0`, `:1`; the result is read by the environment dialect readers.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::native::{json_error, line_column};
use crate::config::vars::normalize_key;
use crate::config::{EnvVars, Origin};
use crate::{Error, Result};

/// Top-level keys that mark a JSON file as .NET `appsettings.json` rather than botauth's own format.
const APPSETTINGS_SECTIONS: [&str; 3] = ["AzureAd", "Connections", "MicrosoftAppId"];

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
pub(super) struct Flattened {
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
pub(super) struct Node<'a> {
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::tests::{APP, SECRET, TENANT, key_of, write_file};
    use super::super::{APPSETTINGS_ORIGIN, read_appsettings};
    use super::*;
    use crate::BotAuthConfig;
    use crate::config::{CredentialConfig, Dialect, EnvVars};
    use crate::{Cloud, Secret};

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
