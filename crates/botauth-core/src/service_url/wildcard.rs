//! The allow-list's wildcard guard: a `*.suffix` entry that covers names anyone can register
//! would hand the bot's token to strangers (see the module documentation of `service_url`).

use super::{ServiceUrlError, ServiceUrlErrorKind};

/// Suffixes under which anyone can get a host name: what clouds, tunnels, hosting services and
/// second-level registries hand out to their customers (the "private domains" of the Public Suffix
/// List, and a few it does not list yet). A wildcard entry equal to one, under one, or above one
/// would send the bot's token to strangers ([`check_wildcard`]). `*.trafficmanager.net` is the
/// likely slip, next to the default `smba.trafficmanager.net`; `*.azure.com` the subtle one.
///
/// Entries that lie under another entry (`blob.core.windows.net` under `windows.net`) are kept so
/// the list reads as the services it stands for, and so that an error names the specific one.
const SHARED_SUFFIXES: &[&str] = &[
    // Azure, public cloud.
    "cloudapp.azure.com",
    "cloudapp.net",
    "azurewebsites.net",
    "azure-mobile.net",
    "azurecontainer.io",
    "azurecontainerapps.io",
    "azurecr.io",
    "azurestaticapps.net",
    "azurefd.net",
    "azureedge.net",
    "azure-api.net",
    "trafficmanager.net",
    "blob.core.windows.net",
    "web.core.windows.net",
    "core.windows.net",
    "servicebus.windows.net",
    "windows.net",
    "devtunnels.ms",
    // Azure, US Government and China clouds.
    "azurewebsites.us",
    "usgovcloudapp.net",
    "usgovcloudapi.net",
    "usgovtrafficmanager.net",
    "chinacloudapp.cn",
    "chinacloudsites.cn",
    "chinacloudapi.cn",
    // AWS.
    "amazonaws.com",
    "amazonaws.com.cn",
    "cloudfront.net",
    "elasticbeanstalk.com",
    "awsapprunner.com",
    "amplifyapp.com",
    "on.aws",
    // Google Cloud and Firebase.
    "appspot.com",
    "cloudfunctions.net",
    "run.app",
    "web.app",
    "firebaseapp.com",
    "googleapis.com",
    "googleusercontent.com",
    "gateway.dev",
    // Tunnels.
    "ngrok.io",
    "ngrok.app",
    "ngrok.dev",
    "ngrok-free.app",
    "ngrok-free.dev",
    "trycloudflare.com",
    "loca.lt",
    "localtunnel.me",
    "serveo.net",
    "lhr.life",
    "localhost.run",
    "pinggy.link",
    // DNS that resolves any name to any address.
    "nip.io",
    "sslip.io",
    "xip.io",
    "duckdns.org",
    // Hosting and developer platforms.
    "github.io",
    "githubusercontent.com",
    "gitlab.io",
    "herokuapp.com",
    "netlify.app",
    "vercel.app",
    "now.sh",
    "pages.dev",
    "workers.dev",
    "onrender.com",
    "fly.dev",
    "railway.app",
    "glitch.me",
    "repl.co",
    "replit.app",
    "replit.dev",
    "deno.dev",
    "surge.sh",
    "csb.app",
    // Second-level registries (CentralNic and others) that sell names under a gTLD.
    "uk.com",
    "uk.net",
    "us.com",
    "us.org",
    "eu.com",
    "gb.net",
    "br.com",
    "cn.com",
    "de.com",
    "jpn.com",
    "jp.net",
    "hu.net",
    "hu.com",
    "ru.com",
    "sa.com",
    "se.net",
    "za.com",
    "za.bz",
    "ae.org",
    "ar.com",
    "kr.com",
    "no.com",
    "qc.com",
    "uy.com",
    "mex.com",
    "gr.com",
    "africa.com",
];

/// Refuses a wildcard suffix (the part after `*.`) that covers names anyone can register: a
/// single label (`*.com`), a country code's generic second level (`*.co.uk`), or a name equal to,
/// under, or above a [`SHARED_SUFFIXES`] entry.
pub(super) fn check_wildcard(suffix: &str) -> Result<(), ServiceUrlError> {
    let broad = |detail, shared_suffix| ServiceUrlError {
        kind: ServiceUrlErrorKind::BroadWildcard,
        host: None,
        detail,
        shared_suffix,
    };
    if !suffix.contains('.') {
        return Err(broad(
            "a wildcard needs at least two labels after `*.` (`*.com` is every host of a top-level \
             domain)",
            None,
        ));
    }
    if is_country_second_level(suffix) {
        return Err(broad(
            "it is a public suffix under a country code (like `*.co.uk`)",
            None,
        ));
    }
    // `s` under the wildcard (`*.azure.com` ⊇ `cloudapp.azure.com`), equal to it, or the wildcard
    // under `s` (`*.mybot.azurewebsites.net`): labels are compared whole, so `*.notazure.com` is
    // not caught by `azure.com`-looking text.
    let within = |inner: &str, outer: &str| {
        inner == outer
            || inner
                .strip_suffix(outer)
                .is_some_and(|rest| rest.ends_with('.'))
    };
    for shared in SHARED_SUFFIXES {
        if within(suffix, shared) {
            return Err(broad(
                "its names are handed out by a cloud, tunnel or hosting service",
                Some(shared),
            ));
        }
        if within(shared, suffix) {
            return Err(broad(
                "a cloud, tunnel or hosting suffix lies under it",
                Some(shared),
            ));
        }
    }
    Ok(())
}

/// `co.uk`, `com.au`, `org.nz`, …: a generic second-level label under a two-letter country code.
fn is_country_second_level(suffix: &str) -> bool {
    let labels: Vec<&str> = suffix.split('.').collect();
    matches!(labels.as_slice(), [second, cc]
        if cc.len() == 2 && ["co", "com", "org", "net", "gov", "ac", "edu", "ne", "or", "go"].contains(second))
}

#[cfg(test)]
mod tests {
    use super::super::tests::kind;
    use super::super::{DEFAULT_ALLOWED_HOSTS, ServiceUrlAllowList, parse_pattern};
    use super::*;

    fn entry_kind(entry: &str) -> ServiceUrlErrorKind {
        match ServiceUrlAllowList::with_defaults_and([entry]) {
            Ok(_) => panic!("{entry} was accepted"),
            Err(e) => e.kind(),
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        use ServiceUrlErrorKind::{BroadWildcard, Malformed, NotHttps};
        for (bad, want) in [
            ("*", Malformed),
            ("*.", Malformed),
            ("", Malformed),
            ("http://bots.contoso.com", NotHttps),
            ("https://user@bots.contoso.com", Malformed),
            ("https://bots.contoso.com/?x", Malformed),
            ("https://bots.contoso.com/#x", Malformed),
            ("bots%2econtoso.com", Malformed),
            ("ｂots.contoso.com", Malformed),
            ("bots.contoso.com.", Malformed),
            ("ftp://bots.contoso.com", Malformed),
            ("*.127.0.0.1", Malformed),
            ("bots.contoso.com:port", Malformed),
            ("bots.contoso.com:99999", Malformed),
            // Wildcards over names anyone can get.
            ("*.com", BroadWildcard),
            ("*.trafficmanager.net", BroadWildcard),
            ("*.azurewebsites.net", BroadWildcard),
            ("*.x.cloudapp.azure.com", BroadWildcard),
            ("*.blob.core.windows.net", BroadWildcard),
            ("*.devtunnels.ms", BroadWildcard),
            ("*.github.io", BroadWildcard),
            ("*.co.uk", BroadWildcard),
            ("*.com.au", BroadWildcard),
            ("*.com.cn", BroadWildcard),
        ] {
            assert_eq!(entry_kind(bad), want, "{bad}");
        }
    }

    /// Issue 13: a wildcard *above* a shared suffix was accepted (`*.azure.com` covers
    /// `anything.<region>.cloudapp.azure.com`, a VM DNS label anyone can claim).
    #[test]
    fn wildcards_above_shared_suffixes_are_refused() {
        for (entry, shared) in [
            ("*.azure.com", Some("cloudapp.azure.com")),
            ("*.azurecontainer.io", Some("azurecontainer.io")),
            ("*.trycloudflare.com", Some("trycloudflare.com")),
            ("*.uk.com", Some("uk.com")),
            ("*.amazonaws.com.cn", Some("amazonaws.com.cn")),
            ("*.cn-north-1.amazonaws.com.cn", Some("amazonaws.com.cn")),
            ("*.core.windows.net", Some("blob.core.windows.net")),
            ("*.windows.net", Some("blob.core.windows.net")),
            ("*.usgovcloudapi.net", Some("usgovcloudapi.net")),
            ("https://*.azure.com/teams/", Some("cloudapp.azure.com")),
            ("*.azure.com:8443", Some("cloudapp.azure.com")),
            ("*.AZURE.com", Some("cloudapp.azure.com")),
        ] {
            let err = ServiceUrlAllowList::with_defaults_and([entry]).unwrap_err();
            assert_eq!(err.kind(), ServiceUrlErrorKind::BroadWildcard, "{entry}");
            assert_eq!(err.shared_suffix(), shared, "{entry}");
            let text = err.to_string();
            assert!(text.contains("list the exact hosts instead"), "{text}");
            if let Some(c) = shared {
                assert!(text.contains(&format!("`{c}`")), "{text}");
            }
        }
        // Every listed suffix, and every name under it, is refused as a wildcard. Spot-check the
        // services the issue named, so a list edit cannot drop them silently.
        for suffix in SHARED_SUFFIXES {
            assert_eq!(suffix.to_ascii_lowercase(), *suffix);
            assert!(suffix.contains('.'), "{suffix}");
            for entry in [format!("*.{suffix}"), format!("*.tenant.{suffix}")] {
                assert_eq!(
                    entry_kind(&entry),
                    ServiceUrlErrorKind::BroadWildcard,
                    "{entry}"
                );
            }
        }
        let unique: std::collections::HashSet<_> = SHARED_SUFFIXES.iter().collect();
        assert_eq!(unique.len(), SHARED_SUFFIXES.len(), "duplicate suffix");
        for named in [
            "cloudapp.azure.com",
            "cloudapp.net",
            "azurewebsites.net",
            "azurecontainer.io",
            "azurestaticapps.net",
            "azurefd.net",
            "trafficmanager.net",
            "blob.core.windows.net",
            "web.core.windows.net",
            "servicebus.windows.net",
            "azure-api.net",
            "azurecontainerapps.io",
            "azureedge.net",
            "amazonaws.com",
            "amazonaws.com.cn",
            "cloudfront.net",
            "elasticbeanstalk.com",
            "appspot.com",
            "cloudfunctions.net",
            "run.app",
            "web.app",
            "firebaseapp.com",
            "herokuapp.com",
            "ngrok.io",
            "ngrok-free.app",
            "ngrok.app",
            "trycloudflare.com",
            "loca.lt",
            "devtunnels.ms",
            "github.io",
            "githubusercontent.com",
            "netlify.app",
            "vercel.app",
            "pages.dev",
            "workers.dev",
            "onrender.com",
            "fly.dev",
            "glitch.me",
            "repl.co",
            "uk.com",
            "us.com",
            "eu.com",
        ] {
            assert!(SHARED_SUFFIXES.contains(&named), "{named} is not listed");
        }
    }

    #[test]
    fn a_broad_wildcard_in_configuration_names_the_key_not_the_entry() {
        let mut list = ServiceUrlAllowList::with_defaults();
        let err = list
            .allow_entries(
                "ALLOWED_SERVICE_URLS",
                &["bots.contoso.com".into(), "*.azure.com".into()],
            )
            .unwrap_err();
        assert!(err.is_config());
        let text = err.to_string();
        assert!(
            text.starts_with("configuration `ALLOWED_SERVICE_URLS`: entry 2"),
            "{text}"
        );
        assert!(text.contains("cloudapp.azure.com"), "{text}");
        assert!(!text.contains("*.azure.com"), "{text}");
    }

    #[test]
    fn the_bot_service_defaults_pass_the_wildcard_guard() {
        for entry in DEFAULT_ALLOWED_HOSTS {
            assert!(parse_pattern(entry).is_ok(), "{entry}");
        }
        // `with_defaults` drops an entry that does not parse: none may be dropped.
        assert_eq!(
            ServiceUrlAllowList::with_defaults().patterns.len(),
            DEFAULT_ALLOWED_HOSTS.len()
        );
        let list = ServiceUrlAllowList::with_defaults_and(DEFAULT_ALLOWED_HOSTS).unwrap();
        for url in [
            "https://smba.trafficmanager.net/teams/",
            "https://webchat.botframework.com/",
            "https://a.b.botframework.us/",
            "https://webchat.botframework.azure.cn/",
        ] {
            assert!(list.check(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn exact_hosts_under_shared_suffixes_are_allowed() {
        let list = ServiceUrlAllowList::with_defaults_and([
            "smba.trafficmanager.net",
            "mybot.azurewebsites.net",
            "vm1.westeurope.cloudapp.azure.com",
            "bots.azure.com",
            "relay.servicebus.windows.net",
            "fixed.trycloudflare.com",
            "bots.uk.com",
            "gw.cn-north-1.amazonaws.com.cn",
        ])
        .unwrap();
        for ok in [
            "https://smba.trafficmanager.net/teams/",
            "https://mybot.azurewebsites.net/",
            "https://vm1.westeurope.cloudapp.azure.com/",
            "https://bots.azure.com/",
            "https://relay.servicebus.windows.net/",
            "https://fixed.trycloudflare.com/",
            "https://bots.uk.com/",
            "https://gw.cn-north-1.amazonaws.com.cn/",
        ] {
            assert!(list.check(ok).is_ok(), "{ok}: {:?}", list.check(ok));
        }
        // Only the named host: its neighbours under the same suffix get nothing.
        for bad in [
            "https://evil.trafficmanager.net/",
            "https://evil.azurewebsites.net/",
            "https://evil.westeurope.cloudapp.azure.com/",
            "https://x.bots.azure.com/",
            "https://evil.trycloudflare.com/",
            "https://evil.uk.com/",
        ] {
            assert_eq!(kind(&list, bad), ServiceUrlErrorKind::NotAllowed, "{bad}");
        }
        // Wildcards near, but not over, a shared suffix are a company's own domains.
        let list = ServiceUrlAllowList::with_defaults_and([
            "*.contoso.com",
            "*.notazure.com",
            "*.bots.contoso.co.uk",
            "*.teams.microsoft.com",
            "*.contoso.uk.com.example",
        ])
        .unwrap();
        assert!(list.check("https://eu.bots.contoso.co.uk/").is_ok());
        assert!(list.check("https://a.notazure.com/").is_ok());
    }
}
