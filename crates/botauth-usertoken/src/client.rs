//! `UserTokenClient`: the Bot Framework Token Service with the bot's own channel token.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use botauth_core::{AccessToken, BotAuthConfig, Clock, Cloud, Error, Secret, TokenRequest};
use botauth_http::internal::{ResolveSettings, read_body, retry_after, transport_error};
use botauth_http::{ClientSettings, HttpOptions};
use botauth_token::TokenManager;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use reqwest::{Method, Url};
use serde_json::Value;

use crate::cache::UserTokenCache;
use crate::context::SignInContext;
use crate::endpoint::token_service_url;
use crate::error::{Repr, ServiceErrorBody, UserTokenError};
use crate::types::{SignInResource, TokenResponse, TokenStatus};

/// The `User-Agent` of Token Service calls.
const PRODUCT: &str = concat!("botauth/", env!("CARGO_PKG_VERSION"));

/// The Bot Framework Token Service (docs/protocol.md §8): user tokens of OAuth connections
/// configured on the bot registration.
///
/// - Authenticated with the bot's own token for the cloud's channel scope
///   (`https://api.botframework.com/.default` …), from the shared [`TokenManager`]; a regional
///   or overridden Token Service URL changes nothing else.
/// - Who is asked about comes from a [`SignInContext`], which only a verified activity makes.
/// - User tokens are [`Secret`]s, cached per (user, connection, channel) while at least 5 min
///   remain and dropped on sign-out.
/// - As the connector: a 401 forces one token refresh and one retry; 429/503 are retried after
///   `Retry-After` (1 s, 2 s, 4 s … at least) up to `max_retries`; no redirects; bounded bodies;
///   the `Authorization` header is sensitive. Neither tokens, codes, `state`, links nor bodies
///   are logged; errors name the host and the operation, never the query (it holds user ids).
///
/// Cheap to clone; clones share the connection pool and the cache.
#[derive(Clone)]
pub struct UserTokenClient {
    inner: Arc<Inner>,
}

struct Inner {
    tokens: TokenManager,
    request: TokenRequest,
    base: String,
    host: String,
    http: reqwest::Client,
    options: HttpOptions,
    max_retries: u32,
    max_retry_wait: Duration,
    cache: UserTokenCache,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for UserTokenClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserTokenClient")
            .field("base", &self.inner.base)
            .field("scope", &self.inner.request.scopes)
            .field("max_retries", &self.inner.max_retries)
            .finish_non_exhaustive()
    }
}

/// Builds a [`UserTokenClient`].
#[must_use]
pub struct UserTokenClientBuilder {
    tokens: TokenManager,
    cloud: Cloud,
    base: Option<String>,
    settings: ClientSettings,
    max_retries: u32,
    max_retry_wait: Duration,
}

impl fmt::Debug for UserTokenClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserTokenClientBuilder")
            .field("cloud", &self.cloud)
            .field("base", &self.base)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl UserTokenClientBuilder {
    /// The cloud: its channel scope for the bot's token and its default Token Service.
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    /// Overrides the Token Service base URL (a regional service, the sandbox). `https`, or
    /// `http` on a loopback host.
    ///
    /// A bot registered with data residency in a region must use its region's service
    /// (`https://europe.token.botframework.com`, `https://unitedstates.token.botframework.com`,
    /// `https://india.token.botframework.com`) and its OAuth redirect URL
    /// `<service>/.auth/web/redirect`; the global service answers such a bot with 500s.
    pub fn token_service_url(mut self, url: impl Into<String>) -> Self {
        self.base = Some(url.into());
        self
    }

    /// The shared settings ([`ClientSettings`]): the HTTP limits (default: 5 s connect, 30 s
    /// overall, 64 KiB), an HTTP client of your own, and the clock of retry waits and cache
    /// expiry. The Token Service has no authority host: [`build`](Self::build) refuses one.
    pub fn settings(mut self, settings: ClientSettings) -> Self {
        self.settings = self.settings.merge(settings);
        self
    }

    /// Retries after 429/503 (default 3).
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// The longest wait before a retry (default 30 s); a longer `Retry-After` is returned at once.
    pub fn max_retry_wait(mut self, wait: Duration) -> Self {
        self.max_retry_wait = wait;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// A configuration error naming `token_service_url` for an unusable override; a credential
    /// error when the HTTP client cannot be built.
    pub fn build(self) -> botauth_core::Result<UserTokenClient> {
        let base = token_service_url(&self.cloud, self.base.as_deref())?;
        let host = Url::parse(&base)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| {
                    format!(
                        "{h}{}",
                        u.port().map(|p| format!(":{p}")).unwrap_or_default()
                    )
                })
            })
            .unwrap_or_else(|| base.clone());
        let (options, http) = self.settings.http_for(
            "the Token Service client",
            HttpOptions {
                max_response_bytes: 64 * 1024,
                ..HttpOptions::default()
            },
        )?;
        Ok(UserTokenClient {
            inner: Arc::new(Inner {
                tokens: self.tokens,
                request: TokenRequest::new(self.cloud.bot_connector_scope()),
                base,
                host,
                http,
                options,
                max_retries: self.max_retries,
                max_retry_wait: self.max_retry_wait,
                cache: UserTokenCache::default(),
                clock: self.settings.clock_or_system(),
            }),
        })
    }
}

/// What a Token Service call answered, before the operation reads it.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl UserTokenClient {
    /// A builder around `tokens`: public cloud, its default Token Service.
    pub fn builder(tokens: TokenManager) -> UserTokenClientBuilder {
        UserTokenClientBuilder {
            tokens,
            cloud: Cloud::Public,
            base: None,
            settings: ClientSettings::default(),
            max_retries: 3,
            max_retry_wait: Duration::from_secs(30),
        }
    }

    /// A client for `config`'s cloud and its `token_service_url` override (`OAuthUrl`,
    /// `OAuthApiEndpoint`, `RestChannelServiceClientFactory__TokenServiceEndpoint`,
    /// `BOTAUTH_TOKEN_SERVICE_URL`, TOML `token_service_url`).
    ///
    /// # Errors
    ///
    /// As [`UserTokenClientBuilder::build`].
    pub fn from_config(config: &BotAuthConfig, tokens: TokenManager) -> botauth_core::Result<Self> {
        let mut builder = Self::builder(tokens).cloud(config.cloud.clone());
        if let Some(url) = &config.token_service_url {
            builder = builder.token_service_url(url.clone());
        }
        builder.build()
    }

    /// The clock of retry waits and cache expiry, which the sign-in flow's timeout follows too.
    pub(crate) fn clock(&self) -> Arc<dyn Clock> {
        Arc::clone(&self.inner.clock)
    }

    /// The Token Service base URL (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The user's token for `connection`, from the cache while 5 minutes of it remain; `None`
    /// when the user is not signed in (HTTP 404, with or without a body, or a body without
    /// `token`). With `code` (a magic code), the service releases the token that code stands for,
    /// and `None` means the code was refused.
    ///
    /// # Errors
    ///
    /// See [`UserTokenError`]: `ConnectionNotFound` for an unknown connection.
    pub async fn get_user_token(
        &self,
        ctx: &SignInContext,
        connection: &str,
        code: Option<&str>,
    ) -> Result<Option<TokenResponse>, UserTokenError> {
        check_connection(connection)?;
        let now = self.inner.clock.now();
        if code.is_none() {
            if let Some(hit) =
                self.inner
                    .cache
                    .get(ctx.user_id(), connection, ctx.channel_id(), now)
            {
                return Ok(Some(hit));
            }
        }
        let mut query = vec![
            ("userId", ctx.user_id()),
            ("connectionName", connection),
            ("channelId", ctx.channel_id()),
        ];
        if let Some(code) = code {
            if code.is_empty() || code.chars().any(char::is_control) {
                return Err(UserTokenError::invalid(
                    "magic code",
                    "is empty or malformed",
                ));
            }
            query.push(("code", code));
        }
        let op = "GetToken";
        let answer = self
            .call(
                op,
                Method::GET,
                "api/usertoken/GetToken",
                &query,
                None,
                "application/json",
            )
            .await?;
        match answer.status {
            200 => Ok(self.remember(ctx, connection, &answer.body)),
            404 => Ok(None),
            status => Err(self.fail(op, status, &answer.body, Some(connection))),
        }
    }

    /// Tokens for several AAD resources at once (`GetAadTokens`), by resource URL.
    ///
    /// # Errors
    ///
    /// See [`UserTokenError`].
    pub async fn get_aad_tokens(
        &self,
        ctx: &SignInContext,
        connection: &str,
        resource_urls: &[&str],
    ) -> Result<HashMap<String, TokenResponse>, UserTokenError> {
        check_connection(connection)?;
        let query = [
            ("userId", ctx.user_id()),
            ("connectionName", connection),
            ("channelId", ctx.channel_id()),
        ];
        let body = serde_json::json!({ "resourceUrls": resource_urls })
            .to_string()
            .into_bytes();
        let op = "GetAadTokens";
        let answer = self
            .call(
                op,
                Method::POST,
                "api/usertoken/GetAadTokens",
                &query,
                Some(body),
                "application/json",
            )
            .await?;
        if answer.status != 200 {
            return Err(self.fail(op, answer.status, &answer.body, Some(connection)));
        }
        let map: serde_json::Map<String, Value> = serde_json::from_slice(&answer.body)
            .map_err(|_| self.invalid_response(op, "a map of resource URL to token response"))?;
        Ok(map
            .into_iter()
            .filter_map(|(url, v)| {
                TokenResponse::from_body(v.to_string().as_bytes()).map(|t| (url, t))
            })
            .collect())
    }

    /// Signs the user out of `connection` (every connection when `None`) on the activity's
    /// channel, and drops the cached tokens.
    ///
    /// # Errors
    ///
    /// See [`UserTokenError`].
    pub async fn sign_out(
        &self,
        ctx: &SignInContext,
        connection: Option<&str>,
    ) -> Result<(), UserTokenError> {
        let mut query = vec![("userId", ctx.user_id()), ("channelId", ctx.channel_id())];
        if let Some(connection) = connection {
            check_connection(connection)?;
            query.push(("connectionName", connection));
        }
        // Evict first: whatever the service answers, the bot must not keep using the token.
        self.inner
            .cache
            .evict(ctx.user_id(), connection, ctx.channel_id());
        let op = "SignOut";
        let answer = self
            .call(
                op,
                Method::DELETE,
                "api/usertoken/SignOut",
                &query,
                None,
                "application/json",
            )
            .await?;
        match answer.status {
            200..=299 => Ok(()),
            status => Err(self.fail(op, status, &answer.body, connection)),
        }
    }

    /// Whether the user has tokens, per connection (`GetTokenStatus`); `include` filters by a
    /// comma-separated list of connection names.
    ///
    /// # Errors
    ///
    /// See [`UserTokenError`].
    pub async fn get_token_status(
        &self,
        ctx: &SignInContext,
        include: Option<&str>,
    ) -> Result<Vec<TokenStatus>, UserTokenError> {
        let mut query = vec![("userId", ctx.user_id()), ("channelId", ctx.channel_id())];
        if let Some(include) = include {
            query.push(("include", include));
        }
        let op = "GetTokenStatus";
        let answer = self
            .call(
                op,
                Method::GET,
                "api/usertoken/GetTokenStatus",
                &query,
                None,
                "application/json",
            )
            .await?;
        if answer.status != 200 {
            return Err(self.fail(op, answer.status, &answer.body, None));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|_| self.invalid_response(op, "a list of token status entries"))
    }

    /// Exchanges an SSO token (Teams: the token whose `aud` is `api://botid-{appId}`) for the
    /// user's token of `connection`. `Ok(None)`: the service had none (404).
    ///
    /// # Errors
    ///
    /// Kind [`ConsentRequired`](crate::UserTokenErrorKind::ConsentRequired) for HTTP 400 (Teams
    /// must show the consent prompt),
    /// [`ConnectionMisconfigured`](crate::UserTokenErrorKind::ConnectionMisconfigured) for HTTP
    /// 500, and the others of
    /// [`UserTokenError`].
    pub async fn exchange_token(
        &self,
        ctx: &SignInContext,
        connection: &str,
        sso_token: &Secret,
    ) -> Result<Option<TokenResponse>, UserTokenError> {
        check_connection(connection)?;
        if sso_token.is_empty() {
            return Err(UserTokenError::invalid("SSO token", "is empty"));
        }
        let query = [
            ("userId", ctx.user_id()),
            ("connectionName", connection),
            ("channelId", ctx.channel_id()),
        ];
        // Flat, as the service wants it: `{"exchangeRequest":{…}}` is a 400.
        let body = serde_json::json!({ "token": sso_token.expose_secret() })
            .to_string()
            .into_bytes();
        let op = "exchange";
        let answer = self
            .call(
                op,
                Method::POST,
                "api/usertoken/exchange",
                &query,
                Some(body),
                "application/json",
            )
            .await?;
        let error_body = || ServiceErrorBody::parse(&answer.body);
        match answer.status {
            200 => Ok(self.remember(ctx, connection, &answer.body)),
            404 => Ok(None),
            400 if error_body().is_connection_not_found() => {
                Err(self.fail(op, 400, &answer.body, Some(connection)))
            }
            400 => Err(UserTokenError::from(Repr::ConsentRequired {
                host: self.inner.host.clone(),
                connection: connection.to_owned(),
                body: error_body(),
            })),
            500 => Err(UserTokenError::from(Repr::ConnectionMisconfigured {
                host: self.inner.host.clone(),
                connection: connection.to_owned(),
                body: error_body(),
            })),
            status => Err(self.fail(op, status, &answer.body, Some(connection))),
        }
    }

    /// The sign-in link and, for SSO, the token exchange resource (`GetSignInResource`), with
    /// `state` built as the SDKs build it from the activity. `final_redirect` is where the
    /// browser goes after signing in.
    ///
    /// # Errors
    ///
    /// `ConnectionNotFound` (HTTP 400) and the others of [`UserTokenError`].
    pub async fn get_sign_in_resource(
        &self,
        ctx: &SignInContext,
        connection: &str,
        final_redirect: Option<&str>,
    ) -> Result<SignInResource, UserTokenError> {
        let op = "GetSignInResource";
        let answer = self
            .sign_in_call(op, ctx, connection, final_redirect, "application/json")
            .await?;
        SignInResource::from_body(&answer.body)
            .ok_or_else(|| self.invalid_response(op, "a sign-in resource with `signInLink`"))
    }

    /// The sign-in link alone (the legacy `GetSignInUrl`, `Accept: text/plain`).
    ///
    /// # Errors
    ///
    /// As [`get_sign_in_resource`](Self::get_sign_in_resource).
    pub async fn get_sign_in_url(
        &self,
        ctx: &SignInContext,
        connection: &str,
        final_redirect: Option<&str>,
    ) -> Result<Secret, UserTokenError> {
        let op = "GetSignInUrl";
        let answer = self
            .sign_in_call(op, ctx, connection, final_redirect, "text/plain")
            .await?;
        let text =
            String::from_utf8(answer.body).map_err(|_| self.invalid_response(op, "a URL"))?;
        // Some versions answer a JSON string.
        let url = text.trim().trim_matches('"');
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(self.invalid_response(op, "a URL"));
        }
        Ok(Secret::new(url))
    }

    /// The user token in a 200 answer's body, kept in the cache for the user, connection and
    /// channel it is for; `None` when the body holds no token.
    fn remember(
        &self,
        ctx: &SignInContext,
        connection: &str,
        body: &[u8],
    ) -> Option<TokenResponse> {
        let token = TokenResponse::from_body(body)?;
        self.inner.cache.put(
            ctx.user_id(),
            connection,
            ctx.channel_id(),
            &token,
            self.inner.clock.now(),
        );
        Some(token)
    }

    /// `GET api/botsignin/{op}` with the `state` built from `ctx` (and `finalRedirect`): the
    /// request both sign-in operations make; anything but 200 is their typed error.
    async fn sign_in_call(
        &self,
        op: &'static str,
        ctx: &SignInContext,
        connection: &str,
        final_redirect: Option<&str>,
        accept: &'static str,
    ) -> Result<Answer, UserTokenError> {
        check_connection(connection)?;
        let state = ctx.sign_in_state(connection);
        let mut query = vec![("state", state.as_str())];
        if let Some(redirect) = final_redirect {
            query.push(("finalRedirect", redirect));
        }
        let path = format!("api/botsignin/{op}");
        let answer = self
            .call(op, Method::GET, &path, &query, None, accept)
            .await?;
        if answer.status != 200 {
            return Err(self.fail(op, answer.status, &answer.body, Some(connection)));
        }
        Ok(answer)
    }

    fn invalid_response(&self, operation: &'static str, expected: &'static str) -> UserTokenError {
        UserTokenError::from(Repr::InvalidResponse {
            operation,
            host: self.inner.host.clone(),
            expected,
        })
    }

    /// The error for a status the operation does not answer itself.
    fn fail(
        &self,
        operation: &'static str,
        status: u16,
        bytes: &[u8],
        connection: Option<&str>,
    ) -> UserTokenError {
        let body = ServiceErrorBody::parse(bytes);
        let host = self.inner.host.clone();
        match connection {
            Some(connection) if body.is_connection_not_found() => {
                UserTokenError::from(Repr::ConnectionNotFound {
                    host,
                    connection: connection.to_owned(),
                    body,
                })
            }
            _ => UserTokenError::from(Repr::Status {
                operation,
                status,
                host,
                body,
            }),
        }
    }

    /// One call with the connector's retry rules; answers every status not handled here
    /// (401 after a refresh, 403, 429/503 after retries become errors).
    async fn call(
        &self,
        operation: &'static str,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
        accept: &'static str,
    ) -> Result<Answer, UserTokenError> {
        let inner = &self.inner;
        let mut url = Url::parse(&format!("{}/{path}", inner.base))
            .map_err(|_| UserTokenError::invalid("token service URL", "is not a URL"))?;
        url.query_pairs_mut().extend_pairs(query);
        let scope = inner.request.scopes.join(" ");
        let token_error = |source| {
            UserTokenError::from(Repr::Token {
                scope: scope.clone(),
                source,
            })
        };
        let mut token = inner
            .tokens
            .get_token(&inner.request)
            .await
            .map_err(token_error)?;
        let mut refreshed = false;
        let mut retries = 0u32;
        loop {
            let (status, headers, bytes) = self
                .send(&method, &url, &token, body.as_deref(), accept)
                .await?;
            tracing::debug!(
                host = %inner.host,
                operation,
                status,
                retries,
                "Token Service answered"
            );
            let error_body = || ServiceErrorBody::parse(&bytes);
            match status {
                401 if !refreshed => {
                    refreshed = true;
                    tracing::info!(host = %inner.host, "the Token Service refused the bot's token; forcing one refresh");
                    token = inner
                        .tokens
                        .force_refresh(&inner.request)
                        .await
                        .map_err(token_error)?;
                }
                401 | 403 => {
                    return Err(UserTokenError::from(Repr::Rejected {
                        status,
                        host: inner.host.clone(),
                        scope,
                        body: error_body(),
                    }));
                }
                429 | 503 => {
                    let asked = retry_after(&headers, inner.clock.now());
                    let wait = asked.map_or(backoff(retries), |a| a.max(backoff(retries)));
                    if retries >= inner.max_retries || wait > inner.max_retry_wait {
                        return Err(UserTokenError::from(Repr::Throttled {
                            status,
                            host: inner.host.clone(),
                            retries,
                            retry_after: asked,
                            body: error_body(),
                        }));
                    }
                    retries += 1;
                    inner.clock.sleep(wait).await;
                    token = inner
                        .tokens
                        .get_token(&inner.request)
                        .await
                        .map_err(token_error)?;
                }
                _ => {
                    return Ok(Answer {
                        status,
                        body: bytes,
                    });
                }
            }
        }
    }

    async fn send(
        &self,
        method: &Method,
        url: &Url,
        token: &AccessToken,
        body: Option<&[u8]>,
        accept: &'static str,
    ) -> Result<(u16, HeaderMap, Vec<u8>), UserTokenError> {
        let inner = &self.inner;
        let unavailable = |source| {
            UserTokenError::from(Repr::Unavailable {
                host: inner.host.clone(),
                source,
            })
        };
        let header = token.authorization_header();
        let mut authorization = HeaderValue::from_str(header.expose_secret()).map_err(|_| {
            unavailable(Error::credential(
                "the access token contains characters that cannot be sent in a header",
            ))
        })?;
        authorization.set_sensitive(true);
        // Errors and logs name the base URL only: the path's query holds user ids and `state`.
        let endpoint = inner.base.as_str();
        let mut request = inner
            .http
            .request(method.clone(), url.clone())
            .header(AUTHORIZATION, authorization)
            .header(ACCEPT, accept)
            .header(USER_AGENT, PRODUCT);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json; charset=utf-8")
                .body(body.to_vec());
        }
        let response = request
            .send()
            .await
            .map_err(|e| unavailable(transport_error(endpoint, e, inner.options.timeout)))?;
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

/// Connection names are sent as query values; refuse what cannot be one.
fn check_connection(connection: &str) -> Result<(), UserTokenError> {
    if connection.trim().is_empty()
        || connection.len() > 256
        || connection.chars().any(char::is_control)
    {
        return Err(UserTokenError::invalid(
            "connection name",
            "must be the OAuth connection's name on the bot registration (1 to 256 characters, no control characters)",
        ));
    }
    Ok(())
}

/// 1 s, 2 s, 4 s …, capped at 32 s: used when a 429/503 comes without `Retry-After`.
fn backoff(retries: u32) -> Duration {
    Duration::from_secs(1u64 << retries.min(5))
}
