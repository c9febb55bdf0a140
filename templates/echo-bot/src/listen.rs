//! Where and how the echo bot listens: `PORT`, `BIND_ADDRESS`, `HEADER_READ_TIMEOUT_SECS` and
//! `MAX_CONNECTIONS`.
//!
//! The defaults suit Azure App Service, which forwards to the container or process on all
//! interfaces: `0.0.0.0:3978`. On a developer machine, `BIND_ADDRESS=127.0.0.1` keeps the bot
//! off the local network (a tunnel such as `devtunnel` or `ngrok` reaches loopback just as well).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::serve::{DEFAULT_MAX_CONNECTIONS, ServeOptions};

/// The variable naming the TCP port (`0` asks the system for a free one).
pub const PORT_VAR: &str = "PORT";
/// The variable naming the IP address to listen on.
pub const BIND_ADDRESS_VAR: &str = "BIND_ADDRESS";
/// The variable naming how many seconds a client has to send its request headers.
pub const HEADER_READ_TIMEOUT_VAR: &str = "HEADER_READ_TIMEOUT_SECS";
/// The variable naming how many connections may be open at once.
pub const MAX_CONNECTIONS_VAR: &str = "MAX_CONNECTIONS";

/// The port when `PORT` is unset: the Bot Framework samples' and the Emulator's default.
pub const DEFAULT_PORT: u16 = 3978;
/// The address when `BIND_ADDRESS` is unset: every IPv4 interface, as App Service needs.
pub const DEFAULT_BIND_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
/// The largest `HEADER_READ_TIMEOUT_SECS` accepted: an hour. A timeout long enough to overflow
/// the timer's clock would panic inside hyper, and anything past minutes defeats the purpose.
pub const MAX_HEADER_READ_TIMEOUT_SECS: u64 = 3600;
/// The largest `MAX_CONNECTIONS` accepted. Each connection is a socket (a file descriptor) and
/// a task; past this, the limit no longer protects anything.
pub const MAX_MAX_CONNECTIONS: usize = 100_000;

/// The listening address and server options, read from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenConfig {
    addr: SocketAddr,
    options: ServeOptions,
}

impl ListenConfig {
    /// Reads `PORT`, `BIND_ADDRESS`, `HEADER_READ_TIMEOUT_SECS` and `MAX_CONNECTIONS` from the
    /// process environment.
    ///
    /// # Errors
    ///
    /// [`ListenConfigError`] naming the first variable with an unusable value.
    pub fn from_env() -> Result<Self, ListenConfigError> {
        // A value that is not UTF-8 is kept (lossily) so that it is refused by name, not ignored.
        Self::from_vars(
            std::env::vars_os().filter_map(|(k, v)| {
                Some((k.into_string().ok()?, v.to_string_lossy().into_owned()))
            }),
        )
    }

    /// Reads the same variables from an injected environment; other keys are ignored.
    ///
    /// # Errors
    ///
    /// [`ListenConfigError`] naming the first variable with an unusable value.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ListenConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let port = match vars.get(PORT_VAR) {
            Some(value) => parse_port(value)?,
            None => DEFAULT_PORT,
        };
        let ip = match vars.get(BIND_ADDRESS_VAR) {
            Some(value) => parse_bind_address(value)?,
            None => DEFAULT_BIND_ADDRESS,
        };
        let mut options = ServeOptions::new();
        if let Some(value) = vars.get(HEADER_READ_TIMEOUT_VAR) {
            options = options.with_header_read_timeout(parse_header_read_timeout(value)?);
        }
        if let Some(value) = vars.get(MAX_CONNECTIONS_VAR) {
            options = options.with_max_connections(parse_max_connections(value)?);
        }
        Ok(ListenConfig {
            addr: SocketAddr::new(ip, port),
            options,
        })
    }

    /// The address to bind.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The options for [`serve`](crate::serve()).
    pub fn options(&self) -> ServeOptions {
        self.options
    }
}

/// Parses a `PORT` value: a number from 0 to 65535, surrounding spaces ignored.
///
/// # Errors
///
/// [`ListenConfigError::Port`].
pub fn parse_port(value: &str) -> Result<u16, ListenConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| ListenConfigError::Port(value.to_owned()))
}

/// Parses a `BIND_ADDRESS` value: an IPv4 address (`0.0.0.0`, `127.0.0.1`) or an IPv6 address
/// (`::`, `::1`), the latter also in brackets (`[::1]`) as URLs write it; surrounding spaces
/// ignored. Host names are refused: binding must not depend on a resolver, and `localhost` may
/// resolve to `::1` on one machine and `127.0.0.1` on the next.
///
/// # Errors
///
/// [`ListenConfigError::BindAddressHasPort`] for `address:port` (the port belongs in `PORT`),
/// [`ListenConfigError::BindAddress`] for anything else that is not an IP address.
pub fn parse_bind_address(value: &str) -> Result<IpAddr, ListenConfigError> {
    let trimmed = value.trim();
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .filter(|inner| inner.contains(':'));
    if let Ok(ip) = bare.unwrap_or(trimmed).parse::<IpAddr>() {
        return Ok(ip);
    }
    if trimmed.parse::<SocketAddr>().is_ok() {
        return Err(ListenConfigError::BindAddressHasPort(value.to_owned()));
    }
    Err(ListenConfigError::BindAddress(value.to_owned()))
}

/// Parses a `HEADER_READ_TIMEOUT_SECS` value: whole seconds from 1 to
/// [`MAX_HEADER_READ_TIMEOUT_SECS`], surrounding spaces ignored.
///
/// # Errors
///
/// [`ListenConfigError::HeaderReadTimeout`].
pub fn parse_header_read_timeout(value: &str) -> Result<Duration, ListenConfigError> {
    match value.trim().parse::<u64>() {
        Ok(secs @ 1..=MAX_HEADER_READ_TIMEOUT_SECS) => Ok(Duration::from_secs(secs)),
        _ => Err(ListenConfigError::HeaderReadTimeout(value.to_owned())),
    }
}

/// Parses a `MAX_CONNECTIONS` value: a whole number from 1 to [`MAX_MAX_CONNECTIONS`],
/// surrounding spaces ignored.
///
/// # Errors
///
/// [`ListenConfigError::MaxConnections`].
pub fn parse_max_connections(value: &str) -> Result<usize, ListenConfigError> {
    match value.trim().parse::<usize>() {
        Ok(max @ 1..=MAX_MAX_CONNECTIONS) => Ok(max),
        _ => Err(ListenConfigError::MaxConnections(value.to_owned())),
    }
}

/// A listening variable with an unusable value; each variant holds the value as given.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListenConfigError {
    /// `PORT` is not a number from 0 to 65535.
    Port(String),
    /// `BIND_ADDRESS` is not an IP address (a host name, an empty value, a typo).
    BindAddress(String),
    /// `BIND_ADDRESS` is an address with a port.
    BindAddressHasPort(String),
    /// `HEADER_READ_TIMEOUT_SECS` is not whole seconds from 1 to 3600.
    HeaderReadTimeout(String),
    /// `MAX_CONNECTIONS` is not a whole number from 1 to 100,000.
    MaxConnections(String),
}

impl ListenConfigError {
    /// The environment variable at fault.
    pub fn variable(&self) -> &'static str {
        match self {
            ListenConfigError::Port(_) => PORT_VAR,
            ListenConfigError::BindAddress(_) | ListenConfigError::BindAddressHasPort(_) => {
                BIND_ADDRESS_VAR
            }
            ListenConfigError::HeaderReadTimeout(_) => HEADER_READ_TIMEOUT_VAR,
            ListenConfigError::MaxConnections(_) => MAX_CONNECTIONS_VAR,
        }
    }
}

impl fmt::Display for ListenConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let variable = self.variable();
        match self {
            ListenConfigError::Port(value) => write!(
                f,
                "{variable} must be a port number from 0 to 65535, e.g. {DEFAULT_PORT}, not {value:?}"
            ),
            ListenConfigError::BindAddress(value) => write!(
                f,
                "{variable} must be an IPv4 or IPv6 address, e.g. 0.0.0.0 (all interfaces, the default) \
                 or 127.0.0.1 / ::1 (this machine only), not {value:?}"
            ),
            ListenConfigError::BindAddressHasPort(value) => write!(
                f,
                "{variable} takes the address alone, not {value:?}: put the port in {PORT_VAR}"
            ),
            ListenConfigError::HeaderReadTimeout(value) => write!(
                f,
                "{variable} must be whole seconds from 1 to {MAX_HEADER_READ_TIMEOUT_SECS}, e.g. 10, not {value:?}"
            ),
            ListenConfigError::MaxConnections(value) => write!(
                f,
                "{variable} must be a whole number from 1 to {MAX_MAX_CONNECTIONS}, e.g. \
                 {DEFAULT_MAX_CONNECTIONS}, not {value:?}"
            ),
        }
    }
}

impl std::error::Error for ListenConfigError {}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::serve::DEFAULT_HEADER_READ_TIMEOUT;

    fn read(vars: &[(&str, &str)]) -> Result<ListenConfig, ListenConfigError> {
        ListenConfig::from_vars(vars.iter().copied())
    }

    #[test]
    fn defaults_are_all_interfaces_port_3978_and_ten_seconds() {
        let config = read(&[("UNRELATED", "x")]).unwrap();
        assert_eq!(config.addr(), "0.0.0.0:3978".parse().unwrap());
        assert_eq!(
            config.options().header_read_timeout(),
            Duration::from_secs(10)
        );
        assert_eq!(DEFAULT_HEADER_READ_TIMEOUT, Duration::from_secs(10));
    }

    #[test]
    fn all_four_variables_are_read() {
        let config = read(&[
            ("PORT", "8080"),
            ("BIND_ADDRESS", "127.0.0.1"),
            ("HEADER_READ_TIMEOUT_SECS", "5"),
            ("MAX_CONNECTIONS", "64"),
        ])
        .unwrap();
        assert_eq!(config.addr(), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            config.options().header_read_timeout(),
            Duration::from_secs(5)
        );
        assert_eq!(config.options().max_connections(), 64);
    }

    #[test]
    fn max_connections_defaults_to_256_and_accepts_1_to_100000() {
        assert_eq!(read(&[]).unwrap().options().max_connections(), 256);
        assert_eq!(DEFAULT_MAX_CONNECTIONS, 256);
        assert_eq!(parse_max_connections("1"), Ok(1));
        assert_eq!(parse_max_connections(" 2048 "), Ok(2048));
        assert_eq!(parse_max_connections("100000"), Ok(100_000));
        for value in [
            "",
            "0",
            "100001",
            "-1",
            "1.5",
            "1e3",
            "many",
            "18446744073709551616",
        ] {
            assert_eq!(
                parse_max_connections(value),
                Err(ListenConfigError::MaxConnections(value.to_owned())),
                "{value:?}"
            );
        }
        let error = read(&[("MAX_CONNECTIONS", "0")]).unwrap_err();
        assert_eq!(error.variable(), "MAX_CONNECTIONS");
        assert_eq!(
            error.to_string(),
            "MAX_CONNECTIONS must be a whole number from 1 to 100000, e.g. 256, not \"0\""
        );
        // Set in code, 0 means 1: a server that accepts nothing is never what was meant.
        assert_eq!(
            ServeOptions::new()
                .with_max_connections(0)
                .max_connections(),
            1
        );
    }

    #[test]
    fn bind_address_accepts_ipv4_and_ipv6() {
        let cases: &[(&str, IpAddr)] = &[
            ("0.0.0.0", IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            ("127.0.0.1", IpAddr::V4(Ipv4Addr::LOCALHOST)),
            (" 127.0.0.1\n", IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ("10.1.2.3", IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3))),
            ("::", IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            ("::1", IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ("[::1]", IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ("[::]", IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            (
                "fd00::2a",
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x2a)),
            ),
            (
                "::ffff:127.0.0.1",
                IpAddr::V6(Ipv4Addr::LOCALHOST.to_ipv6_mapped()),
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_bind_address(value), Ok(*expected), "{value:?}");
        }
        let config = read(&[("BIND_ADDRESS", "::1"), ("PORT", "3978")]).unwrap();
        assert_eq!(config.addr(), "[::1]:3978".parse().unwrap());
    }

    #[test]
    fn bind_address_refuses_host_names_and_junk() {
        for value in [
            "",
            " ",
            "localhost",
            "example.com",
            "256.0.0.1",
            "127.0.0",
            "127.0.0.1.",
            "0.0.0.0/0",
            "::1::",
            "[127.0.0.1]",
            "[::1",
            "::1]",
            "http://127.0.0.1",
            "fe80::1%eth0",
            "*",
        ] {
            assert_eq!(
                parse_bind_address(value),
                Err(ListenConfigError::BindAddress(value.to_owned())),
                "{value:?}"
            );
        }
    }

    #[test]
    fn bind_address_with_a_port_is_refused_pointing_at_port() {
        for value in ["127.0.0.1:3978", "0.0.0.0:80", "[::1]:3978", " [::]:0 "] {
            assert_eq!(
                parse_bind_address(value),
                Err(ListenConfigError::BindAddressHasPort(value.to_owned())),
                "{value:?}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_variable_in_one_line() {
        let error = read(&[("BIND_ADDRESS", "localhost")]).unwrap_err();
        assert_eq!(error.variable(), "BIND_ADDRESS");
        assert_eq!(
            error.to_string(),
            "BIND_ADDRESS must be an IPv4 or IPv6 address, e.g. 0.0.0.0 (all interfaces, the default) \
             or 127.0.0.1 / ::1 (this machine only), not \"localhost\""
        );
        let error = read(&[("BIND_ADDRESS", "127.0.0.1:3978")]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "BIND_ADDRESS takes the address alone, not \"127.0.0.1:3978\": put the port in PORT"
        );
        let error = read(&[("PORT", "http")]).unwrap_err();
        assert_eq!(error, ListenConfigError::Port("http".into()));
        assert_eq!(
            error.to_string(),
            "PORT must be a port number from 0 to 65535, e.g. 3978, not \"http\""
        );
        let error = read(&[("HEADER_READ_TIMEOUT_SECS", "0")]).unwrap_err();
        assert_eq!(error.variable(), "HEADER_READ_TIMEOUT_SECS");
        assert_eq!(
            error.to_string(),
            "HEADER_READ_TIMEOUT_SECS must be whole seconds from 1 to 3600, e.g. 10, not \"0\""
        );
        for error in [
            ListenConfigError::Port("a\nb".into()),
            ListenConfigError::BindAddress("a\nb".into()),
            ListenConfigError::BindAddressHasPort("a\nb".into()),
            ListenConfigError::HeaderReadTimeout("a\nb".into()),
            ListenConfigError::MaxConnections("a\nb".into()),
        ] {
            assert!(!error.to_string().contains('\n'), "{error}");
        }
    }

    #[test]
    fn port_accepts_0_to_65535_only() {
        assert_eq!(parse_port("0"), Ok(0));
        assert_eq!(parse_port(" 3978 "), Ok(3978));
        assert_eq!(parse_port("65535"), Ok(65535));
        for value in ["", "65536", "-1", "3978.0", "0x50", "http"] {
            assert_eq!(
                parse_port(value),
                Err(ListenConfigError::Port(value.to_owned())),
                "{value:?}"
            );
        }
    }

    #[test]
    fn header_read_timeout_accepts_1_to_3600_seconds_only() {
        assert_eq!(parse_header_read_timeout("1"), Ok(Duration::from_secs(1)));
        assert_eq!(
            parse_header_read_timeout(" 30 "),
            Ok(Duration::from_secs(30))
        );
        assert_eq!(
            parse_header_read_timeout("3600"),
            Ok(Duration::from_secs(3600))
        );
        for value in [
            "",
            "0",
            "3601",
            "-5",
            "1.5",
            "10s",
            "off",
            "18446744073709551615",
            "18446744073709551616",
        ] {
            assert_eq!(
                parse_header_read_timeout(value),
                Err(ListenConfigError::HeaderReadTimeout(value.to_owned())),
                "{value:?}"
            );
        }
    }

    #[test]
    fn the_first_bad_variable_is_reported() {
        let error = read(&[("PORT", "x"), ("BIND_ADDRESS", "y")]).unwrap_err();
        assert_eq!(error, ListenConfigError::Port("x".into()));
    }
}
