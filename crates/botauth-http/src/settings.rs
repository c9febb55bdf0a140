//! The settings every botauth client builder takes: one struct, embedded by each builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use botauth_core::{BotAuthConfig, Clock, Cloud, Error, Result, SystemClock};

use crate::HttpOptions;
use crate::client::build_client;
use crate::internal::ResolveSettings;

/// The settings shared by every botauth client that makes HTTP requests — the clock, the HTTP
/// limits, the HTTP client and the Entra authority host — given to any builder with its
/// `settings` method (the secret, certificate and Key Vault credentials, the client-credentials
/// client, managed identity, the validator, the Bot Connector and Token Service clients).
///
/// A setting left unset keeps the builder's own default (the limits differ per client: managed
/// identity connects within 1 s, the Bot Connector reads at most 64 KiB), and a builder given
/// settings twice keeps what each call set, the later one winning. A builder whose client does not
/// talk to Entra refuses an authority host when it is built instead of ignoring it.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use botauth_core::{Cloud, ManualClock};
/// use botauth_http::{ClientSettings, HttpOptions};
///
/// let settings = ClientSettings::new()
///     .cloud(&Cloud::UsGov)
///     .clock(Arc::new(ManualClock::new()))
///     .http_options(HttpOptions { timeout: Duration::from_secs(10), ..HttpOptions::default() });
/// assert!(format!("{settings:?}").contains("https://login.microsoftonline.us"));
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct ClientSettings {
    clock: Option<Arc<dyn Clock>>,
    http: Option<HttpOptions>,
    timeout: Option<Duration>,
    client: Option<reqwest::Client>,
    authority_host: Option<String>,
}

impl fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSettings")
            .field("clock", &self.clock)
            .field("http", &self.http)
            .field("timeout", &self.timeout)
            .field("client", &self.client.as_ref().map(|_| "custom"))
            .field("authority_host", &self.authority_host)
            .finish()
    }
}

impl ClientSettings {
    /// No setting made: every builder keeps its defaults.
    pub fn new() -> Self {
        ClientSettings::default()
    }

    /// The clock for expiry times, retry waits and `Retry-After` dates (tests inject a manual one).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Timeouts and the response size limit, replacing the builder's defaults as a whole.
    pub fn http_options(mut self, options: HttpOptions) -> Self {
        self.http = Some(options);
        self
    }

    /// The overall timeout of one exchange, keeping the builder's other limits (what the
    /// configuration's `http_timeout` sets); laid over [`http_options`](Self::http_options).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The settings a configuration makes: its cloud's authority host and its
    /// `http_timeout`.
    pub fn from_config(config: &BotAuthConfig) -> Self {
        let settings = ClientSettings::new().cloud(&config.cloud);
        match config.http_timeout {
            Some(timeout) => settings.timeout(timeout),
            None => settings,
        }
    }

    /// Uses this HTTP client (custom TLS roots, a proxy of your own). It should not follow
    /// redirects, and with it the timeouts of [`http_options`](Self::http_options) are the
    /// client's own; botauth still applies the response size limit.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The Entra authority host (`https://…`, or `http://` on loopback for local development and
    /// the sandbox), checked when the builder builds.
    pub fn authority_host(mut self, authority_host: impl Into<String>) -> Self {
        self.authority_host = Some(authority_host.into());
        self
    }

    /// The authority host of `cloud`.
    pub fn cloud(self, cloud: &Cloud) -> Self {
        self.authority_host(cloud.authority_host())
    }
}

impl ResolveSettings for ClientSettings {
    /// These settings with every setting made in `later` laid over them.
    fn merge(self, later: ClientSettings) -> ClientSettings {
        ClientSettings {
            clock: later.clock.or(self.clock),
            http: later.http.or(self.http),
            timeout: later.timeout.or(self.timeout),
            client: later.client.or(self.client),
            authority_host: later.authority_host.or(self.authority_host),
        }
    }

    /// The clock set, or the system clock.
    fn clock_or_system(&self) -> Arc<dyn Clock> {
        self.clock.clone().unwrap_or_else(|| Arc::new(SystemClock))
    }

    /// The HTTP limits set, or `default`, with the [`timeout`](Self::timeout) laid over them.
    fn http_options_or(&self, default: HttpOptions) -> HttpOptions {
        let mut options = self.http.unwrap_or(default);
        if let Some(timeout) = self.timeout {
            options.timeout = timeout;
        }
        options
    }

    /// The HTTP client set, or one built by [`build_client`] with `options`.
    ///
    /// # Errors
    ///
    /// As [`build_client`].
    fn client_or_build(&self, options: &HttpOptions) -> Result<reqwest::Client> {
        match &self.client {
            Some(client) => Ok(client.clone()),
            None => build_client(options),
        }
    }

    /// The authority host set, or `default`.
    fn authority_host_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.authority_host.as_deref().unwrap_or(default)
    }

    /// Refuses an authority host for a client that does not talk to Entra (`client` names it in
    /// the error), so that a setting cannot be silently ignored.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `authority_host` when one was set.
    fn refuse_authority_host(&self, client: &str) -> Result<()> {
        match self.authority_host {
            Some(_) => Err(Error::config(
                "authority_host",
                format!(
                    "{client} does not request tokens from Entra, so it has no authority host: set \
                     it on the credential instead"
                ),
            )),
            None => Ok(()),
        }
    }

    /// What a client that requests no token of its own builds with (the Connector, the Token
    /// Service client): refuses an authority host naming `client`, then returns the limits (the
    /// ones set, or `defaults`) and the HTTP client (the one given, or one built for them).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `authority_host` when one was set; as [`build_client`].
    fn http_for(
        &self,
        client: &str,
        defaults: HttpOptions,
    ) -> Result<(HttpOptions, reqwest::Client)> {
        self.refuse_authority_host(client)?;
        let options = self.http_options_or(defaults);
        let http = self.client_or_build(&options)?;
        Ok((options, http))
    }

    /// The HTTP client given, if any (then botauth builds none).
    fn given_http_client(&self) -> Option<&reqwest::Client> {
        self.client.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use botauth_core::{ErrorKind, ManualClock};

    use super::*;

    #[test]
    fn later_settings_win_and_unset_ones_keep_the_earlier() {
        let manual = ManualClock::new();
        manual.set(SystemTime::UNIX_EPOCH);
        let clock: Arc<dyn Clock> = Arc::new(manual);
        let first = ClientSettings::new()
            .authority_host("http://127.0.0.1:1")
            .clock(Arc::clone(&clock));
        let limits = HttpOptions {
            timeout: Duration::from_secs(3),
            ..HttpOptions::default()
        };
        let merged = first.merge(
            ClientSettings::new()
                .http_options(limits)
                .cloud(&Cloud::UsGov),
        );
        assert_eq!(
            merged.authority_host_or("x"),
            "https://login.microsoftonline.us"
        );
        assert_eq!(merged.http_options_or(HttpOptions::default()), limits);
        assert_eq!(merged.clock_or_system().now(), SystemTime::UNIX_EPOCH);
        assert!(merged.given_http_client().is_none());

        let timed = merged.merge(ClientSettings::new().timeout(Duration::from_secs(9)));
        let timed_limits = timed.http_options_or(HttpOptions::default());
        assert_eq!(timed_limits.timeout, Duration::from_secs(9));
        assert_eq!(timed_limits.connect_timeout, limits.connect_timeout);

        let defaults = ClientSettings::new();
        assert_eq!(defaults.authority_host_or("https://h"), "https://h");
        let small = HttpOptions {
            max_response_bytes: 64 * 1024,
            ..HttpOptions::default()
        };
        assert_eq!(defaults.http_options_or(small), small);
        assert!(
            defaults
                .refuse_authority_host("the Bot Connector client")
                .is_ok()
        );
    }

    #[test]
    fn an_authority_host_where_none_applies_is_refused_by_name() {
        let e = ClientSettings::new()
            .authority_host("https://login.microsoftonline.com")
            .refuse_authority_host("the inbound validator")
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(matches!(e, Error::Config { ref key, .. } if key == "authority_host"));
        assert!(
            e.to_string()
                .contains("the inbound validator does not request tokens"),
            "{e}"
        );
    }

    #[test]
    fn debug_names_a_custom_client_without_its_internals() {
        let settings = ClientSettings::new().http_client(reqwest::Client::new());
        let text = format!("{settings:?}");
        assert!(text.contains("client: Some(\"custom\")"), "{text}");
    }
}
