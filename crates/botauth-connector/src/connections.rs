//! Several identities in one bot: named connections and the `ConnectionsMap` that picks one per
//! outgoing call (Microsoft 365 Agents SDK semantics, docs/protocol.md §9).
//!
//! A bot that answers for several app registrations (one per tenant, per channel, or a skill that
//! replies as someone else) must send each reply with the token of the identity the conversation
//! belongs to. Sending it with the wrong one is at best a 401 from the Connector and at worst a
//! message posted under another bot's name; so a call that no rule covers fails with
//! [`ConnectorErrorKind::NoConnection`](crate::ConnectorErrorKind::NoConnection) instead of falling back
//! to some identity. An empty map is the exception: every call uses the top-level connection, as a
//! bot with one identity always has.

use std::fmt;
use std::sync::Arc;

use botauth_core::config::ConnectionMapEntry;
use botauth_core::service_url::ServiceUrl;
use botauth_core::{BotAuthConfig, Cloud, Dialect, Error, Result, TokenRequest};
use botauth_token::TokenManager;
use regex::{Regex, RegexBuilder};

pub use botauth_core::config::DEFAULT_CONNECTION_NAME;

/// The placeholder in a connection's scopes that stands for the target's `scheme://host`.
const INSTANCE: &str = "{instance}";

/// Bounds what one `ServiceUrl` pattern may compile to. Real patterns are a host or two; the
/// bound keeps a pasted-in monster from costing memory on every client build.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One identity the Connector client can send as: a name, the token manager of its credential,
/// its cloud, and its scopes.
///
/// Cheap to clone (the token manager is shared).
#[derive(Clone)]
pub struct Connection {
    name: String,
    tokens: TokenManager,
    cloud: Cloud,
    scopes: Vec<String>,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("name", &self.name)
            .field("credential", self.tokens.credential())
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// The top-level connection of a client built around one token manager: named
/// [`DEFAULT_CONNECTION_NAME`], public cloud, no scopes of its own.
impl From<TokenManager> for Connection {
    fn from(tokens: TokenManager) -> Self {
        Connection::new(DEFAULT_CONNECTION_NAME, tokens)
    }
}

impl Connection {
    /// A connection named `name` whose tokens come from `tokens`: public cloud, no scopes of its
    /// own (the cloud's Bot Connector scope).
    pub fn new(name: impl Into<String>, tokens: TokenManager) -> Self {
        Connection {
            name: name.into(),
            tokens,
            cloud: Cloud::Public,
            scopes: Vec::new(),
        }
    }

    /// The cloud whose Bot Connector scope the connection's calls use when it has no scopes.
    #[must_use]
    pub fn with_cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    /// The scopes of the connection's Connector calls (Agents `Scopes`); `{instance}` stands for
    /// the target's `scheme://host`. Empty: the cloud's Bot Connector scope.
    #[must_use]
    pub fn with_scopes(mut self, scopes: Vec<String>) -> Self {
        self.scopes = scopes;
        self
    }

    /// The connection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The token manager its tokens come from.
    pub fn tokens(&self) -> &TokenManager {
        &self.tokens
    }

    /// Its cloud.
    pub(crate) fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// The token request of a Connector call to `service_url` through this connection: its scopes
    /// with `{instance}` replaced by the target's `scheme://host` (no port, as the Agents SDK
    /// does), or the cloud's Bot Connector scope when it has none.
    pub fn token_request(&self, service_url: &ServiceUrl) -> TokenRequest {
        if self.scopes.is_empty() {
            return TokenRequest::new(self.cloud.bot_connector_scope());
        }
        let instance = instance_of(service_url.as_str());
        TokenRequest::with_scopes(self.scopes.iter().map(|s| s.replace(INSTANCE, &instance)))
    }
}

/// `scheme://host` of a canonical service URL: the port and the path dropped, an IPv6 literal
/// kept in brackets.
fn instance_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if authority.starts_with('[') {
        authority
            .split_once(']')
            .map_or(authority, |(h, _)| &authority[..=h.len()])
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    format!("{scheme}://{host}")
}

/// One compiled rule of the map.
#[derive(Debug)]
struct Rule {
    /// `None`: `*` or empty, every service URL.
    service_url: Option<Regex>,
    audience: Option<String>,
    connection: String,
}

/// The compiled `ConnectionsMap`: which connection an outgoing call uses.
///
/// Rules are tried in order and the first that matches wins (docs/protocol.md §9):
/// - `service_url` `*` or empty matches every service URL; anything else is a regular expression,
///   unanchored and case-insensitive, searched in the service URL as the call gives it (the
///   incoming activity's `serviceUrl`). The syntax is the `regex` crate's: .NET's look-arounds
///   and back-references are refused when the map is compiled, never at call time;
/// - `audience`, when set, must equal the inbound token's `aud` (or `appid` when it has no `aud`),
///   compared case-insensitively as .NET does; a rule with an audience never matches a call that
///   has no inbound token to compare with (a proactive message).
///
/// An empty map matches nothing: callers then use the top-level connection (see
/// [`is_empty`](Self::is_empty)). Cheap to clone.
///
/// ```
/// use botauth_connector::ConnectionMap;
/// use botauth_core::config::ConnectionMapEntry;
///
/// let map = ConnectionMap::new(&[
///     ConnectionMapEntry::new("*", "Parent").with_audience("parent-app-id"),
///     ConnectionMapEntry::new(r"^https://smba\.trafficmanager\.net/", "Teams"),
///     ConnectionMapEntry::new("*", "ServiceConnection"),
/// ])
/// .unwrap();
/// let teams = "https://smba.trafficmanager.net/amer/";
/// assert_eq!(map.resolve(teams, None), Some("Teams"));
/// assert_eq!(map.resolve(teams, Some("PARENT-APP-ID")), Some("Parent"));
/// assert_eq!(map.resolve("https://europe.webchat.botframework.com/", None), Some("ServiceConnection"));
/// assert_eq!(map.default_connection(), Some("ServiceConnection"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ConnectionMap {
    rules: Arc<[Rule]>,
}

impl ConnectionMap {
    /// Compiles `entries`; errors name the keys as the Agents SDK spells them
    /// (`ConnectionsMap:<i>:ServiceUrl`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `ConnectionsMap:<i>:ServiceUrl` for a pattern that is not a
    /// regular expression, or `ConnectionsMap:<i>:Connection` for an empty connection name.
    pub fn new(entries: &[ConnectionMapEntry]) -> Result<Self> {
        Self::compile(entries, Dialect::AgentsSdk)
    }

    /// Compiles `config.connections_map` and checks that every rule names a connection of
    /// `config` (its `connection_name`, or one of its `connections`). Errors name the keys as
    /// `config`'s dialect spells them: `ConnectionsMap:<i>:ServiceUrl`, or
    /// `connections_map[<i>].service_url` in botauth's own files.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), and [`Error::Config`] naming `ConnectionsMap:<i>:Connection` for a
    /// rule whose connection the configuration does not define.
    pub fn from_config(config: &BotAuthConfig) -> Result<Self> {
        let map = Self::compile(&config.connections_map, config.dialect)?;
        let mut known = vec![config.top_level_connection_name()];
        known.extend(config.connections.iter().map(|c| c.name.as_str()));
        map.check_connections(&known, config.dialect, Unknown::NotConfigured)?;
        Ok(map)
    }

    fn compile(entries: &[ConnectionMapEntry], dialect: Dialect) -> Result<Self> {
        let rules = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let pattern = entry.service_url.trim();
                let service_url = if pattern.is_empty() || pattern == "*" {
                    None
                } else {
                    Some(
                        RegexBuilder::new(pattern)
                            .case_insensitive(true)
                            .size_limit(REGEX_SIZE_LIMIT)
                            .build()
                            .map_err(|e| {
                                Error::config(
                                    map_key(dialect, index, Field::ServiceUrl),
                                    format!(
                                        "is not a regular expression ({}): give `*` for every \
                                         service URL, or a pattern such as \
                                         `^https://smba\\.trafficmanager\\.net/` (look-arounds and \
                                         back-references are not supported)",
                                        regex_problem(&e)
                                    ),
                                )
                            })?,
                    )
                };
                let connection = entry.connection.trim();
                if connection.is_empty() {
                    return Err(Error::config(
                        map_key(dialect, index, Field::Connection),
                        "is empty: name the connection this rule sends calls through",
                    ));
                }
                Ok(Rule {
                    service_url,
                    audience: entry
                        .audience
                        .as_deref()
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned),
                    connection: connection.to_owned(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ConnectionMap {
            rules: rules.into(),
        })
    }

    /// Checks that every rule names one of `known` (compared without regard to case, as .NET
    /// configuration keys are).
    pub(crate) fn check_connections(
        &self,
        known: &[&str],
        dialect: Dialect,
        unknown: Unknown,
    ) -> Result<()> {
        for (index, rule) in self.rules.iter().enumerate() {
            if known
                .iter()
                .any(|k| k.eq_ignore_ascii_case(&rule.connection))
            {
                continue;
            }
            let list = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let name = &rule.connection;
            let message = match unknown {
                Unknown::NotConfigured => format!(
                    "names connection `{name}`, which is not configured (configured: {list}); \
                     define it under `Connections:{name}:Settings` or correct the name"
                ),
                Unknown::NotInClient => format!(
                    "names connection `{name}`, which this Connector client has no token manager \
                     for (it has: {list}); build the client with `BotAuth::connector`, which \
                     builds every configured connection, or add it with \
                     `ConnectorClientBuilder::connection`"
                ),
            };
            return Err(Error::config(
                map_key(dialect, index, Field::Connection),
                message,
            ));
        }
        Ok(())
    }

    /// Whether the map has no rules (every call then uses the top-level connection).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The number of rules.
    pub(crate) fn len(&self) -> usize {
        self.rules.len()
    }

    /// The connection of the first rule that matches a call to `service_url` made for an inbound
    /// token whose `aud` (or `appid`) is `inbound_audience`; `None` when no rule matches (always,
    /// for an empty map).
    pub fn resolve(&self, service_url: &str, inbound_audience: Option<&str>) -> Option<&str> {
        self.rules
            .iter()
            .find(|rule| {
                let audience = match (&rule.audience, inbound_audience) {
                    (None, _) => true,
                    (Some(want), Some(got)) => want.eq_ignore_ascii_case(got.trim()),
                    (Some(_), None) => false,
                };
                audience
                    && rule
                        .service_url
                        .as_ref()
                        .is_none_or(|re| re.is_match(service_url))
            })
            .map(|rule| rule.connection.as_str())
    }

    /// The default connection by the Agents SDK rule: the first rule with `*` (or empty) as its
    /// service URL and no audience. `None` when there is none; the top-level connection is then
    /// the default.
    pub fn default_connection(&self) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.service_url.is_none() && r.audience.is_none())
            .map(|r| r.connection.as_str())
    }
}

/// Why a rule's connection may be unknown: the configuration does not define it, or the
/// configuration does but the Connector client was not given its token manager.
#[derive(Clone, Copy)]
pub(crate) enum Unknown {
    NotConfigured,
    NotInClient,
}

#[derive(Clone, Copy)]
enum Field {
    ServiceUrl,
    Connection,
}

/// A map key as `dialect` spells it: botauth's own files use the model's field names, every other
/// dialect the Agents SDK's configuration path.
fn map_key(dialect: Dialect, index: usize, field: Field) -> String {
    match (dialect, field) {
        (Dialect::Native, Field::ServiceUrl) => format!("connections_map[{index}].service_url"),
        (Dialect::Native, Field::Connection) => format!("connections_map[{index}].connection"),
        (_, Field::ServiceUrl) => format!("ConnectionsMap:{index}:ServiceUrl"),
        (_, Field::Connection) => format!("ConnectionsMap:{index}:Connection"),
    }
}

/// What is wrong with a pattern, in one line. The pattern is configuration, not a secret, but the
/// message stays short: the regex crate's own text spans several lines with a caret diagram.
fn regex_problem(error: &regex::Error) -> String {
    match error {
        regex::Error::CompiledTooBig(_) => "it compiles to more than 1 MiB".to_owned(),
        regex::Error::Syntax(text) => text
            .lines()
            .rev()
            .find(|l| l.starts_with("error:"))
            .map_or("syntax error", |l| l.trim_start_matches("error:").trim())
            .to_owned(),
        _ => "not supported".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(url: &str, connection: &str) -> ConnectionMapEntry {
        ConnectionMapEntry::new(url, connection)
    }

    #[test]
    fn first_match_wins_and_patterns_are_unanchored_and_case_insensitive() {
        let map = ConnectionMap::new(&[
            entry("TRAFFICMANAGER", "teams"),
            entry("botframework\\.com", "bf"),
            entry("", "rest"),
        ])
        .unwrap();
        assert_eq!(
            map.resolve("https://smba.trafficmanager.net/amer/", None),
            Some("teams")
        );
        assert_eq!(
            map.resolve("https://europe.webchat.botframework.com/", None),
            Some("bf")
        );
        assert_eq!(map.resolve("https://bots.contoso.com/", None), Some("rest"));
        assert_eq!(map.default_connection(), Some("rest"));
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn an_audience_rule_needs_that_audience() {
        let map = ConnectionMap::new(&[
            entry("*", "skill").with_audience("AAAA-bbbb"),
            entry("contoso", "contoso"),
        ])
        .unwrap();
        assert_eq!(map.resolve("https://x/", Some("aaaa-BBBB")), Some("skill"));
        assert_eq!(map.resolve("https://x/", Some("other")), None);
        assert_eq!(map.resolve("https://x/", None), None);
        assert_eq!(
            map.resolve("https://contoso/", Some("other")),
            Some("contoso")
        );
        // An audience rule is never the default.
        assert_eq!(map.default_connection(), None);
    }

    #[test]
    fn an_empty_map_matches_nothing() {
        let map = ConnectionMap::new(&[]).unwrap();
        assert!(map.is_empty());
        assert_eq!(map.resolve("https://smba.trafficmanager.net/", None), None);
        assert_eq!(map.default_connection(), None);
    }

    #[test]
    fn a_bad_pattern_names_its_key_in_the_dialect() {
        let entries = [entry("*", "a"), entry("(?<=x)y", "b")];
        let e = ConnectionMap::new(&entries).unwrap_err();
        assert!(
            matches!(&e, Error::Config { key, .. } if key == "ConnectionsMap:1:ServiceUrl"),
            "{e:?}"
        );
        assert!(e.to_string().contains("look-around"), "{e}");
        assert!(!e.to_string().contains('\n'), "{e}");
        let mut config = BotAuthConfig::new(Dialect::Native);
        config.connections_map = entries.to_vec();
        let e = ConnectionMap::from_config(&config).unwrap_err();
        assert!(
            matches!(&e, Error::Config { key, .. } if key == "connections_map[1].service_url"),
            "{e:?}"
        );
        let e = ConnectionMap::new(&[entry("*", " ")]).unwrap_err();
        assert!(
            matches!(&e, Error::Config { key, .. } if key == "ConnectionsMap:0:Connection"),
            "{e:?}"
        );
    }

    #[test]
    fn a_rule_must_name_a_configured_connection() {
        let mut config = BotAuthConfig::new(Dialect::AgentsSdk);
        config.connection_name = Some("ServiceConnection".into());
        config
            .connections
            .push(botauth_core::config::ConnectionConfig::new("Other"));
        config.connections_map = vec![entry("*", "serviceconnection"), entry("x", "other")];
        ConnectionMap::from_config(&config).unwrap();
        config.connections_map.push(entry("y", "Missing"));
        let e = ConnectionMap::from_config(&config).unwrap_err();
        assert!(
            matches!(&e, Error::Config { key, .. } if key == "ConnectionsMap:2:Connection"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("configured: `ServiceConnection`, `Other`"),
            "{e}"
        );
        // Unnamed, the top-level connection is `default`.
        let mut config = BotAuthConfig::new(Dialect::Native);
        config.connections_map = vec![entry("*", "default")];
        ConnectionMap::from_config(&config).unwrap();
    }

    #[test]
    fn instance_is_scheme_and_host() {
        assert_eq!(
            instance_of("https://smba.trafficmanager.net/amer/"),
            "https://smba.trafficmanager.net"
        );
        assert_eq!(instance_of("http://127.0.0.1:8080/"), "http://127.0.0.1");
        assert_eq!(instance_of("http://[::1]:8080/x/"), "http://[::1]");
    }
}
