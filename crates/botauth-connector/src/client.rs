//! `ConnectorClient`: sends activities to the Bot Connector with the bot's outbound token.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use botauth_core::internal::telemetry;
use botauth_core::service_url::{ServiceUrl, ServiceUrlAllowList};
use botauth_core::{AccessToken, BotAuthConfig, Clock, Dialect, Error, Result, TokenRequest};
use botauth_http::internal::{ResolveSettings, read_body, retry_after, transport_error};
use botauth_http::{ClientSettings, HttpOptions};
use botauth_token::TokenManager;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::Value;
use tracing::Instrument as _;

use crate::connections::{Connection, ConnectionMap, Unknown};
use crate::error::{ConnectorError, ConnectorErrorBody, Repr};
use crate::target::{Audience, ResourceResponse, Target, address_reply};

/// Sends activities to the Bot Connector (docs/protocol.md §1): `POST {serviceUrl}v3/conversations/…`
/// with `Authorization: Bearer <token>` from the [`TokenManager`] (the one cache).
///
/// - The token goes only to a service URL the allow-list accepts (docs/protocol.md §6, outbound guard):
///   the Bot Service hosts plus configured ones, `https` except loopback. A refused URL is a
///   [`ConnectorErrorKind::ServiceUrl`](crate::ConnectorErrorKind::ServiceUrl) and nothing is sent — no token is even requested.
/// - A 401 forces one token refresh and one retry (docs/protocol.md §5, `force_refresh`): the Connector
///   can refuse a token that looked valid, e.g. right after a credential rotation. At most one
///   forced refresh per scope per [`refresh_cooldown`](ConnectorClientBuilder::refresh_cooldown).
/// - 429 and 503 are retried after `Retry-After` (never sooner than 1 s, 2 s, 4 s …), up to
///   [`max_retries`](ConnectorClientBuilder::max_retries); a `Retry-After` longer than
///   [`max_retry_wait`](ConnectorClientBuilder::max_retry_wait) is returned at once as
///   [`ConnectorErrorKind::Throttled`](crate::ConnectorErrorKind::Throttled) for the caller to schedule. Other failures — including other
///   5xx, where the activity may already have been delivered — are not retried, so a reply is never
///   posted twice by botauth.
/// - No redirects are followed, bodies are bounded, and the `Authorization` header is marked
///   sensitive; neither the token nor the activity is logged.
/// - With several identities (Agents SDK connections), each call goes through the connection the
///   [`ConnectionMap`] picks for its service URL and inbound audience, with that connection's
///   token and scopes; a call no rule covers is a [`ConnectorErrorKind::NoConnection`](crate::ConnectorErrorKind::NoConnection) and nothing is
///   sent. Without a map every call uses the top-level connection. The allow-list is checked
///   first, whatever the map says.
///
/// Cheap to clone; clones share the HTTP connection pool.
#[derive(Clone)]
pub struct ConnectorClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// The top-level connection first, then the named ones.
    connections: Vec<Connection>,
    map: ConnectionMap,
    allow: ServiceUrlAllowList,
    http: reqwest::Client,
    options: HttpOptions,
    max_retries: u32,
    max_retry_wait: Duration,
    refresh_cooldown: Duration,
    /// When a 401 last forced a refresh, per token cache key.
    forced: std::sync::Mutex<std::collections::HashMap<String, std::time::SystemTime>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for ConnectorClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let top = self.top();
        f.debug_struct("ConnectorClient")
            .field("credential", top.tokens().credential())
            .field("scope", &top.cloud().bot_connector_scope())
            .field(
                "connections",
                &self
                    .inner
                    .connections
                    .iter()
                    .map(Connection::name)
                    .collect::<Vec<_>>(),
            )
            .field("map_rules", &self.inner.map.len())
            .field("allow", &self.inner.allow)
            .field("max_retries", &self.inner.max_retries)
            .finish_non_exhaustive()
    }
}

/// Builds a [`ConnectorClient`].
#[must_use]
pub struct ConnectorClientBuilder {
    top: Connection,
    connections: Vec<Connection>,
    map: ConnectionMap,
    dialect: Dialect,
    allow: ServiceUrlAllowList,
    extra: Vec<String>,
    settings: ClientSettings,
    max_retries: u32,
    max_retry_wait: Duration,
    refresh_cooldown: Duration,
}

impl fmt::Debug for ConnectorClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectorClientBuilder")
            .field("top", &self.top)
            .field("connections", &self.connections)
            .field("map", &self.map)
            .field("extra", &self.extra)
            .field("settings", &self.settings)
            .field("max_retries", &self.max_retries)
            .field("max_retry_wait", &self.max_retry_wait)
            .finish_non_exhaustive()
    }
}

impl ConnectorClientBuilder {
    /// Adds a named connection that [`ConnectionMap`] rules may send calls through.
    pub fn connection(mut self, connection: Connection) -> Self {
        self.connections.push(connection);
        self
    }

    /// The rules that pick a connection per call (default: none, every call uses the top-level
    /// connection). [`build`](Self::build) checks that each names a connection of the client.
    pub fn connections_map(mut self, map: ConnectionMap) -> Self {
        self.map = map;
        self
    }

    /// The allow-list (default: the Bot Service hosts of docs/protocol.md §6). Add hosts,
    /// wildcard hosts or URLs to those with [`ServiceUrlAllowList::allow`].
    pub fn allow_list(mut self, allow: ServiceUrlAllowList) -> Self {
        self.allow = allow;
        self
    }

    /// The shared settings ([`ClientSettings`]): the HTTP limits (default: 5 s connect, 30 s
    /// overall, 64 KiB), an HTTP client of your own, and the clock retry waits go through (tests
    /// use a manual clock). The Connector has no authority host: [`build`](Self::build) refuses
    /// one (the credential's token manager has it).
    pub fn settings(mut self, settings: ClientSettings) -> Self {
        self.settings = self.settings.merge(settings);
        self
    }

    /// Retries after 429/503 (default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest wait in line before a retry (default 30 s); a longer `Retry-After` is
    /// returned to the caller at once.
    pub fn max_retry_wait(mut self, wait: Duration) -> Self {
        self.max_retry_wait = wait;
        self
    }

    /// The least time between two refreshes forced by a 401 for the same scope (default 30 s):
    /// a Connector that refuses every token gets an `Unauthorized` error instead of one token
    /// request per reply.
    pub fn refresh_cooldown(mut self, cooldown: Duration) -> Self {
        self.refresh_cooldown = cooldown;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `allowed_service_urls` for an unusable allow-list entry,
    /// `connections` for two connections with one name, or `ConnectionsMap:<i>:Connection` for a
    /// rule naming a connection the client does not have; a credential error when the HTTP
    /// client cannot be built (TLS set-up).
    pub fn build(mut self) -> Result<ConnectorClient> {
        self.allow
            .allow_entries("allowed_service_urls", &self.extra)?;
        let mut connections = vec![self.top];
        for connection in self.connections {
            if connections
                .iter()
                .any(|c| c.name().eq_ignore_ascii_case(connection.name()))
            {
                return Err(Error::config(
                    "connections",
                    format!(
                        "two connections are named `{}` (names are compared without regard to \
                         case): rename one",
                        connection.name()
                    ),
                ));
            }
            connections.push(connection);
        }
        let names: Vec<&str> = connections.iter().map(Connection::name).collect();
        self.map
            .check_connections(&names, self.dialect, Unknown::NotInClient)?;
        let (options, http) = self.settings.http_for(
            "the Bot Connector client",
            HttpOptions {
                max_response_bytes: 64 * 1024,
                ..HttpOptions::default()
            },
        )?;
        Ok(ConnectorClient {
            inner: Arc::new(Inner {
                connections,
                map: self.map,
                allow: self.allow,
                http,
                options,
                max_retries: self.max_retries,
                max_retry_wait: self.max_retry_wait,
                refresh_cooldown: self.refresh_cooldown,
                forced: std::sync::Mutex::default(),
                clock: self.settings.clock_or_system(),
            }),
        })
    }
}

impl ConnectorClient {
    /// A builder around the top-level connection: a [`TokenManager`] (named
    /// [`DEFAULT_CONNECTION_NAME`](crate::DEFAULT_CONNECTION_NAME), public cloud, the Bot
    /// Connector scope), or a [`Connection`] with its own name, cloud and scopes
    /// ([`ConnectionMap`] rules refer to it by its name). Bot Service allow-list, default retries.
    pub fn builder(top: impl Into<Connection>) -> ConnectorClientBuilder {
        ConnectorClientBuilder {
            top: top.into(),
            connections: Vec::new(),
            map: ConnectionMap::default(),
            dialect: Dialect::AgentsSdk,
            allow: ServiceUrlAllowList::with_defaults(),
            extra: Vec::new(),
            settings: ClientSettings::default(),
            max_retries: 3,
            max_retry_wait: Duration::from_secs(30),
            refresh_cooldown: Duration::from_secs(30),
        }
    }

    /// A client for `config`'s cloud, with its `allowed_service_urls` (botas
    /// `ALLOWED_SERVICE_URLS`, `BOTAUTH_ALLOWED_SERVICE_URLS`) added to the Bot Service hosts.
    /// `tokens` is the top-level connection's token manager.
    ///
    /// A configuration whose `connections_map` sends calls through other `connections` needs
    /// their token managers too: build it with `botauth::BotAuth::connector`, which builds every
    /// connection's credential, or with [`builder_from_config`](Self::builder_from_config) and
    /// [`ConnectorClientBuilder::connection`].
    ///
    /// # Errors
    ///
    /// As [`ConnectorClientBuilder::build`], and [`ConnectionMap::from_config`]'s errors.
    pub fn from_config(config: &BotAuthConfig, tokens: TokenManager) -> Result<Self> {
        Self::builder_from_config(config, tokens)?.build()
    }

    /// A builder set up from `config` as [`from_config`](Self::from_config) describes: its cloud,
    /// allow-list entries, the top-level connection's name and scopes, and its compiled
    /// `connections_map`. Add the other connections with [`ConnectorClientBuilder::connection`].
    ///
    /// # Errors
    ///
    /// [`ConnectionMap::from_config`]'s errors (an invalid `ServiceUrl` pattern, a rule naming a
    /// connection the configuration does not define).
    pub fn builder_from_config(
        config: &BotAuthConfig,
        tokens: TokenManager,
    ) -> Result<ConnectorClientBuilder> {
        let map = ConnectionMap::from_config(config)?;
        Ok(Self::builder_from_parts(config, tokens, map))
    }

    /// [`builder_from_config`](Self::builder_from_config) with a map compiled already (the
    /// facade compiles it once at start-up and hands each client a copy).
    pub fn builder_from_parts(
        config: &BotAuthConfig,
        tokens: TokenManager,
        map: ConnectionMap,
    ) -> ConnectorClientBuilder {
        let top = Connection::new(config.top_level_connection_name(), tokens)
            .with_cloud(config.cloud.clone())
            .with_scopes(config.scopes.clone());
        let mut builder = Self::builder(top).connections_map(map);
        builder.dialect = config.dialect;
        if let Some(timeout) = config.http_timeout {
            // `BOTAUTH_HTTP_TIMEOUT` / `http_timeout`: the Connector's other limits stay.
            builder = builder.settings(ClientSettings::new().timeout(timeout));
        }
        // Checked by `build`, whose error names the configuration key.
        builder
            .extra
            .extend(config.allowed_service_urls.iter().cloned());
        builder
    }

    fn top(&self) -> &Connection {
        // `build` always puts the top-level connection first.
        &self.inner.connections[0]
    }

    /// The connection named `name` (compared without regard to case).
    fn connection(&self, name: &str) -> Option<&Connection> {
        self.inner
            .connections
            .iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The connection a call to `service_url` for an inbound token of audience
    /// `inbound_audience` goes through, after the allow-list check: the top-level one when the
    /// map is empty, else the first matching rule's.
    ///
    /// # Errors
    ///
    /// [`ConnectorErrorKind::ServiceUrl`](crate::ConnectorErrorKind::ServiceUrl) when the allow-list refuses `service_url`;
    /// [`ConnectorErrorKind::NoConnection`](crate::ConnectorErrorKind::NoConnection) when no rule matches.
    pub fn connection_for(
        &self,
        service_url: &str,
        inbound_audience: Option<&str>,
    ) -> Result<&Connection, ConnectorError> {
        self.check_service_url(service_url)?;
        self.route(service_url, inbound_audience)
    }

    fn route(
        &self,
        service_url: &str,
        inbound_audience: Option<&str>,
    ) -> Result<&Connection, ConnectorError> {
        let map = &self.inner.map;
        if map.is_empty() {
            return Ok(self.top());
        }
        map.resolve(service_url, inbound_audience)
            .and_then(|name| self.connection(name))
            .ok_or_else(|| {
                Repr::NoConnection {
                    service_url: service_url.to_owned(),
                    audience: inbound_audience.map(str::to_owned),
                }
                .into()
            })
    }

    /// Checks a service URL against the allow-list without sending anything.
    ///
    /// # Errors
    ///
    /// [`ConnectorErrorKind::ServiceUrl`](crate::ConnectorErrorKind::ServiceUrl).
    pub fn check_service_url(&self, service_url: &str) -> Result<ServiceUrl, ConnectorError> {
        self.inner
            .allow
            .check(service_url)
            .map_err(|e| Repr::ServiceUrl(e).into())
    }

    /// The token request of a call to `base` through `connection`: a skill reply's audience is
    /// the calling bot whatever the connection's scopes say.
    fn request_for(
        connection: &Connection,
        base: &ServiceUrl,
        audience: &Audience,
    ) -> Result<TokenRequest, ConnectorError> {
        match audience {
            Audience::BotConnector => Ok(connection.token_request(base)),
            Audience::Skill(app_id) => skill_request(app_id),
        }
    }

    /// Replies to an incoming activity: `reply` is addressed from it as
    /// [`reply_activity`](crate::reply_activity) addresses (the fields `reply` has already are
    /// kept) and sent to its `serviceUrl`, conversation and id,
    /// with a Bot Connector token. Use [`reply_to_verified`](Self::reply_to_verified) (feature
    /// `validator`) to reply to skills with the right audience too.
    ///
    /// # Errors
    ///
    /// See [`send`](Self::send).
    pub async fn reply(
        &self,
        incoming: &Value,
        reply: Value,
    ) -> Result<ResourceResponse, ConnectorError> {
        self.reply_as(incoming, reply, Audience::BotConnector, None)
            .await
    }

    /// Replies to an activity the validator accepted. The token's audience follows the caller:
    /// the Bot Connector for channel, Entra and emulator tokens; the calling bot's app id for a
    /// skill call. `ConnectionsMap` rules with an `Audience` are compared with the verified
    /// token's `aud` (or `appid`).
    ///
    /// # Errors
    ///
    /// See [`send`](Self::send); [`ConnectorErrorKind::InvalidArgument`](crate::ConnectorErrorKind::InvalidArgument) for a skill token without an
    /// app id.
    #[cfg(feature = "validator")]
    pub async fn reply_to_verified(
        &self,
        incoming: &botauth_validator::VerifiedActivity,
        reply: Value,
    ) -> Result<ResourceResponse, ConnectorError> {
        let claims = incoming.claims();
        let audience = crate::audience_for(claims)?;
        let inbound = crate::inbound_audience_of(claims).map(str::to_owned);
        self.reply_as(incoming.activity(), reply, audience, inbound)
            .await
    }

    async fn reply_as(
        &self,
        incoming: &Value,
        reply: Value,
        audience: Audience,
        inbound_audience: Option<String>,
    ) -> Result<ResourceResponse, ConnectorError> {
        let mut target = Target::reply_to_activity(incoming)?.audience(audience);
        target.inbound_audience = inbound_audience;
        self.send(&target, &address_reply(incoming, reply)).await
    }

    /// Sends `activity` to `target`.
    ///
    /// # Errors
    ///
    /// - [`ConnectorErrorKind::ServiceUrl`](crate::ConnectorErrorKind::ServiceUrl) / [`InvalidArgument`](crate::ConnectorErrorKind::InvalidArgument) /
    ///   [`NoConnection`](crate::ConnectorErrorKind::NoConnection): refused before anything is sent;
    /// - [`ConnectorErrorKind::Token`](crate::ConnectorErrorKind::Token): no token could be had;
    /// - [`ConnectorErrorKind::Unauthorized`](crate::ConnectorErrorKind::Unauthorized) / [`Forbidden`](crate::ConnectorErrorKind::Forbidden): 401
    ///   after one forced refresh, or 403;
    /// - [`ConnectorErrorKind::Throttled`](crate::ConnectorErrorKind::Throttled): 429/503 after the allowed retries;
    /// - [`ConnectorErrorKind::Status`](crate::ConnectorErrorKind::Status): any other failure status, with the Connector's error body;
    /// - [`ConnectorErrorKind::Unavailable`](crate::ConnectorErrorKind::Unavailable): transport failure, timeout, oversized answer.
    ///
    /// Each call is a `botauth.connector.send` span (INFO) with the service URL's host, the
    /// connection, the HTTP attempts, the last status and the outcome; each attempt counts in
    /// `botauth.connector.sends` and `http.client.request.duration` (feature `metrics`;
    /// docs/observability.md). The conversation path is never recorded.
    pub async fn send(
        &self,
        target: &Target,
        activity: &Value,
    ) -> Result<ResourceResponse, ConnectorError> {
        let span = tracing::info_span!(
            "botauth.connector.send",
            server.address = tracing::field::Empty,
            connection = tracing::field::Empty,
            attempts = 0u32,
            http.response.status_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let result = self
            .send_traced(target, activity)
            .instrument(span.clone())
            .await;
        span.record("outcome", if result.is_ok() { "ok" } else { "error" });
        result
    }

    /// [`send`](Self::send), inside its span.
    async fn send_traced(
        &self,
        target: &Target,
        activity: &Value,
    ) -> Result<ResourceResponse, ConnectorError> {
        let span = tracing::Span::current();
        let base = self.check_service_url(&target.service_url)?;
        span.record("server.address", base.host());
        let url = format!("{}{}", base.as_str(), target.path()?);
        if !activity.is_object() {
            return Err(ConnectorError::from(Repr::InvalidArgument {
                what: "activity",
                message: "must be a JSON object".into(),
            }));
        }
        let body = activity.to_string().into_bytes();
        let connection = self.route(&target.service_url, target.inbound_audience.as_deref())?;
        span.record("connection", connection.name());
        let request = Self::request_for(connection, &base, &target.audience)?;
        let tokens = connection.tokens();
        let scope = request.scopes.join(" ");
        let token_error = |source| Repr::Token {
            scope: scope.clone(),
            source,
        };
        let inner = &self.inner;
        let mut token = tokens.get_token(&request).await.map_err(token_error)?;
        let mut refreshed = false;
        let mut retries = 0u32;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            span.record("attempts", attempts);
            let (status, headers, bytes) = self.post(&base, &url, &token, &body).await?;
            span.record("http.response.status_code", status);
            tracing::debug!(
                host = base.host(),
                connection = connection.name(),
                status,
                retries,
                "Bot Connector answered"
            );
            if (200..300).contains(&status) {
                return Ok(serde_json::from_slice(&bytes).unwrap_or_default());
            }
            let error_body = ConnectorErrorBody::parse(&bytes);
            match status {
                401 if !refreshed => {
                    refreshed = true;
                    // Another reply may have refreshed already: take its token rather than
                    // forcing yet another.
                    let cached = tokens.get_token(&request).await.map_err(token_error)?;
                    if cached.token != token.token {
                        token = cached;
                        continue;
                    }
                    // A Connector that refuses every token must not turn each reply into a
                    // token request: at most one forced refresh per scope per cooldown.
                    if !self.may_force_refresh(connection, &request) {
                        return Err(ConnectorError::from(Repr::Rejected {
                            status,
                            host: base.host().to_owned(),
                            scope,
                            body: error_body,
                        }));
                    }
                    tracing::info!(
                        host = base.host(),
                        "the Bot Connector refused the token; forcing one refresh"
                    );
                    token = tokens.force_refresh(&request).await.map_err(token_error)?;
                }
                401 | 403 => {
                    return Err(ConnectorError::from(Repr::Rejected {
                        status,
                        host: base.host().to_owned(),
                        scope,
                        body: error_body,
                    }));
                }
                429 | 503 => {
                    let asked = retry_after(&headers, inner.clock.now());
                    // `Retry-After` lengthens the backoff but never shortens it: a `0` would
                    // otherwise make the retries spin.
                    let wait = asked.map_or(backoff(retries), |a| a.max(backoff(retries)));
                    if retries >= inner.max_retries || wait > inner.max_retry_wait {
                        return Err(ConnectorError::from(Repr::Throttled {
                            status,
                            host: base.host().to_owned(),
                            retries,
                            retry_after: asked,
                            body: error_body,
                        }));
                    }
                    retries += 1;
                    tracing::info!(
                        host = base.host(),
                        status,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "the Bot Connector asked to slow down; retrying"
                    );
                    inner.clock.sleep(wait).await;
                    // The wait may have outlived the token; the cache answers at once otherwise.
                    token = tokens.get_token(&request).await.map_err(token_error)?;
                }
                _ => {
                    return Err(ConnectorError::from(Repr::Status {
                        status,
                        host: base.host().to_owned(),
                        body: error_body,
                    }));
                }
            }
        }
    }

    /// Whether a forced refresh for `request` is allowed now, recording it if so.
    fn may_force_refresh(&self, connection: &Connection, request: &TokenRequest) -> bool {
        let inner = &self.inner;
        let now = inner.clock.now();
        // Per connection: two identities asking for the same scope are two different tokens.
        let key = format!(
            "{}\n{}",
            connection.name(),
            connection.tokens().cache_key(request)
        );
        let mut last = inner
            .forced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let recent = last.get(&key).is_some_and(|at| {
            now.duration_since(*at)
                .is_ok_and(|since| since < inner.refresh_cooldown)
        });
        if recent {
            tracing::warn!(
                "the Bot Connector refused a freshly refreshed token; not forcing another refresh \
                 within the cooldown"
            );
            return false;
        }
        last.insert(key, now);
        true
    }

    async fn post(
        &self,
        base: &ServiceUrl,
        url: &str,
        token: &AccessToken,
        body: &[u8],
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), ConnectorError> {
        let inner = &self.inner;
        let unavailable = |source| Repr::Unavailable {
            host: base.host().to_owned(),
            source,
        };
        let header = token.authorization_header();
        let mut authorization = HeaderValue::from_str(header.expose_secret()).map_err(|_| {
            unavailable(Error::credential(
                "the access token contains characters that cannot be sent in a header",
            ))
        })?;
        authorization.set_sensitive(true);
        // Errors name the service URL, never the conversation path (it identifies users).
        let endpoint = base.as_str();
        let started = std::time::Instant::now();
        let sent = inner
            .http
            .post(url)
            .header(AUTHORIZATION, authorization)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_vec())
            .send()
            .await;
        record_attempt(
            base.host(),
            sent.as_ref().ok().map(|r| r.status().as_u16()),
            started.elapsed(),
        );
        let response =
            sent.map_err(|e| unavailable(transport_error(endpoint, e, inner.options.timeout)))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = read_body(
            response,
            endpoint,
            inner.options.max_response_bytes,
            inner.options.timeout,
        )
        .await
        .map_err(unavailable)?;
        Ok((status, headers, bytes))
    }
}

/// Counts one HTTP attempt to the Bot Connector and its duration (docs/observability.md).
fn record_attempt(host: &str, status: Option<u16>, took: Duration) {
    if !telemetry::ENABLED {
        return;
    }
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    telemetry::counter(
        telemetry::CONNECTOR_SENDS,
        &[
            ("server.address", host),
            ("http.response.status_code", &status),
        ],
    )
    .increment(1);
    telemetry::histogram(
        telemetry::HTTP_CLIENT_REQUEST_DURATION,
        &[
            ("http.request.method", "POST"),
            ("server.address", host),
            ("http.response.status_code", &status),
        ],
    )
    .record_duration(took);
}

/// `{app id}/.default`: the token a skill replies to its caller with.
fn skill_request(app_id: &str) -> Result<TokenRequest, ConnectorError> {
    let app_id = app_id.trim_end_matches('/');
    if app_id.is_empty() || app_id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConnectorError::from(Repr::InvalidArgument {
            what: "skill app id",
            message: "must be the calling bot's app id (no spaces)".into(),
        }));
    }
    Ok(TokenRequest::new(format!("{app_id}/.default")))
}

/// 1 s, 2 s, 4 s …, capped at 32 s: used when a 429/503 comes without `Retry-After`.
fn backoff(retries: u32) -> Duration {
    Duration::from_secs(1u64 << retries.min(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skill_reply_is_for_the_calling_bot() {
        let parent = "99999999-8888-7777-6666-555555555555";
        assert_eq!(
            skill_request(parent).unwrap().scopes,
            [format!("{parent}/.default")]
        );
        for bad in ["", "a b", "x\n"] {
            assert_eq!(
                skill_request(bad).unwrap_err().kind(),
                crate::ConnectorErrorKind::InvalidArgument
            );
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let waits: Vec<u64> = (0..8).map(|r| backoff(r).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 32, 32]);
    }
}
