//! [`ValidatorBuilder`]: the trust profiles, limits and settings of one bot's [`Validator`], and
//! the checks that turn them into issuer rules and key caches.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use botauth_core::{BotAuthConfig, Cloud};
use botauth_http::internal::ResolveSettings;
use botauth_http::{ClientSettings, HttpOptions};
use serde_json::Value;

use crate::check::{ClaimsCheck, ClaimsChecks, ClaimsRejection};
use crate::claims::BotClaims;
use crate::error::{Error, Result};
use crate::jwk::parse_jwks;
use crate::jwt::{Algorithm, Limits};
use crate::keys::{KeyCache, KeyTiming};
use crate::profile::{
    AllowedCallers, BotServiceProfile, EmulatorProfile, EntraHosts, EntraProfile, SkillProfile,
    bot_framework_tenants,
};
use crate::telemetry;
use crate::validator::{ActivityInfo, EntraRules, Inner, IssuerRules, Validator};
use crate::verified_cache::VerifiedCache;

/// The verified-token cache's default byte bound.
const DEFAULT_VERIFIED_BYTES: usize = 32 << 20;

/// Configures a [`Validator`].
#[derive(Debug, Clone)]
pub struct ValidatorBuilder {
    app_id: String,
    extra_audiences: Vec<String>,
    bot_service: Vec<BotServiceProfile>,
    entra: Option<EntraProfile>,
    emulator: Option<EmulatorProfile>,
    skills: Option<SkillProfile>,
    algorithms: Vec<Algorithm>,
    skew: Duration,
    strict_endorsements: bool,
    limits: Limits,
    timing: KeyTiming,
    settings: ClientSettings,
    verified_capacity: usize,
    verified_bytes: usize,
    fixed: Vec<(String, Value)>,
    checks: ClaimsChecks,
}

impl ValidatorBuilder {
    pub(crate) fn new(app_id: String) -> Self {
        ValidatorBuilder {
            app_id,
            extra_audiences: Vec::new(),
            bot_service: Vec::new(),
            entra: None,
            emulator: None,
            skills: None,
            algorithms: Algorithm::DEFAULT.to_vec(),
            skew: Duration::from_secs(300),
            strict_endorsements: false,
            limits: Limits::default(),
            timing: KeyTiming::default(),
            settings: ClientSettings::default(),
            verified_capacity: 10_000,
            verified_bytes: DEFAULT_VERIFIED_BYTES,
            fixed: Vec::new(),
            checks: ClaimsChecks::default(),
        }
    }

    /// A builder from botauth's configuration model (any dialect): the app id is `client_id`;
    /// `inbound` chooses the profiles — Bot Service of the configured cloud (with
    /// `BOTAUTH_METADATA_URL` as its metadata when set), Entra tenants, the emulator (with the
    /// bot's tenant), skills (callers from `allowed_callers`, required) — and carries extra
    /// audiences, allowed callers and strict endorsements.
    pub fn from_config(config: &BotAuthConfig) -> Result<Self> {
        let app_id = config
            .client_id
            .clone()
            .filter(|id| !id.trim().is_empty())
            .ok_or_else(|| Error::config("client_id", "the bot's app id is not configured"))?;
        let inbound = &config.inbound;
        let mut builder = Validator::builder(app_id);
        if inbound.bot_service {
            let mut profile = BotServiceProfile::for_cloud(&config.cloud);
            if let Some(url) = &inbound.metadata_url {
                profile.metadata_url.clone_from(url);
            }
            if let Some(issuer) = &inbound.issuer {
                profile.issuer.clone_from(issuer);
            }
            builder = builder.bot_service(profile);
        }
        let authority = config.cloud.authority_host();
        let entra_authority = match &inbound.entra_metadata_url {
            Some(url) => authority_of_metadata("inbound.entra_metadata_url", url)?,
            None => authority.to_owned(),
        };
        let v1_host = match config.cloud {
            Cloud::China => "https://sts.chinacloudapi.cn",
            _ => crate::profile::PUBLIC_V1_ISSUER_HOST,
        };
        if let Some((first, rest)) = inbound.entra_tenants.split_first() {
            let mut entra = EntraProfile::new(first)
                .authority_host(&entra_authority)
                .v1_issuer_host(v1_host);
            for tenant in rest {
                entra = entra.tenant(tenant);
            }
            if !inbound.allowed_callers.is_empty() {
                entra = entra.allowed_callers(AllowedCallers::from_list(
                    inbound.allowed_callers.iter().cloned(),
                ));
            }
            builder = builder.entra(entra);
        }
        if inbound.emulator {
            let emulator_authority = match &inbound.emulator_metadata_url {
                Some(url) => authority_of_metadata("inbound.emulator_metadata_url", url)?,
                None => authority.to_owned(),
            };
            let mut emulator = EmulatorProfile::new()
                .authority_host(emulator_authority)
                .v1_issuer_host(v1_host);
            if let Some(tenant) = &config.tenant_id {
                emulator = emulator.tenant(tenant);
            }
            builder = builder.emulator(emulator);
        }
        if inbound.skills {
            if inbound.allowed_callers.is_empty() {
                return Err(Error::config(
                    "inbound.allowed_callers",
                    "inbound.skills needs the calling bots' app ids (or `*` to accept any bot)",
                ));
            }
            let mut skills = SkillProfile::new(AllowedCallers::from_list(
                inbound.allowed_callers.iter().cloned(),
            ))
            .authority_host(authority)
            .v1_issuer_host(v1_host);
            if let Some(tenant) = &config.tenant_id {
                skills = skills.tenant(tenant);
            }
            builder = builder.skills(skills);
        }
        for audience in &inbound.extra_audiences {
            builder = builder.audience(audience);
        }
        if let Some(every) = inbound.key_refresh {
            builder = builder.key_refresh_interval(every);
        }
        if let Some(timeout) = config.http_timeout {
            builder = builder.settings(ClientSettings::new().timeout(timeout));
        }
        if !inbound.valid_issuers.is_empty() {
            // Agents `ValidIssuers`: on top of each profile's own issuer rule, the issuer must
            // be listed (docs/protocol.md §6).
            let issuers = inbound.valid_issuers.clone();
            builder = builder.claims_check(move |claims, _| {
                let issuer = claims.issuer().trim_end_matches('/');
                if issuers.iter().any(|i| i.trim_end_matches('/') == issuer) {
                    Ok(())
                } else {
                    Err(ClaimsRejection::new(
                        "the issuer is not one of the configured valid issuers",
                    ))
                }
            });
        }
        Ok(builder.strict_endorsements(inbound.strict_endorsements))
    }

    /// Accepts Bot Service channel tokens of this cloud (may be called for several clouds).
    #[must_use]
    pub fn bot_service(mut self, profile: BotServiceProfile) -> Self {
        self.bot_service.push(profile);
        self
    }

    /// Accepts Entra ID tokens of the profile's tenants.
    #[must_use]
    pub fn entra(mut self, profile: EntraProfile) -> Self {
        self.entra = Some(profile);
        self
    }

    /// Accepts Bot Framework Emulator tokens (off by default).
    #[must_use]
    pub fn emulator(mut self, profile: EmulatorProfile) -> Self {
        self.emulator = Some(profile);
        self
    }

    /// Accepts skill calls from the profile's allowed callers (off by default).
    #[must_use]
    pub fn skills(mut self, profile: SkillProfile) -> Self {
        self.skills = Some(profile);
        self
    }

    /// Accepts this `aud` besides the app id (Entra profiles also accept `api://{app id}`).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.extra_audiences.push(audience.into());
        self
    }

    /// The algorithm allow-list (default RS256, RS384, RS512).
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Clock skew tolerated on `exp` and `nbf` (default 300 s).
    #[must_use]
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// Strict endorsements: also refuse Bot Service keys that carry no endorsements (default lax,
    /// as Bot Framework JS). Entra keys never carry endorsements and are not affected.
    #[must_use]
    pub fn strict_endorsements(mut self, on: bool) -> Self {
        self.strict_endorsements = on;
        self
    }

    /// The largest token accepted, in bytes (default 16 KiB).
    #[must_use]
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.limits.max_token_bytes = bytes;
        self
    }

    /// How often keys are refreshed (default 24 h).
    #[must_use]
    pub fn key_refresh_interval(mut self, every: Duration) -> Self {
        self.timing.refresh_every = every;
        self
    }

    /// At most one refetch per this interval for an unknown `kid` (default 5 min).
    #[must_use]
    pub fn unknown_kid_cooldown(mut self, cooldown: Duration) -> Self {
        self.timing.unknown_kid_cooldown = cooldown;
        self
    }

    /// After a failed key fetch, wait this long before trying again (default 30 s).
    #[must_use]
    pub fn retry_after_failure(mut self, wait: Duration) -> Self {
        self.timing.retry_after_failure = wait;
        self
    }

    /// Keep serving keys fetched at most this long ago while the endpoint fails (default 72 h).
    #[must_use]
    pub fn max_stale(mut self, max: Duration) -> Self {
        self.timing.max_stale = max;
        self
    }

    /// The shared settings ([`ClientSettings`]): the limits of key fetches (default: 5 s
    /// connect, 10 s overall, 256 KiB), an HTTP client of your own for them, and the clock for
    /// time claims and cache ages (default the system clock). The validator requests no token,
    /// so [`build`](Self::build) refuses an authority host.
    #[must_use]
    pub fn settings(mut self, settings: ClientSettings) -> Self {
        self.settings = self.settings.merge(settings);
        self
    }

    /// How many verified tokens to remember (default 10,000, rounded up to a multiple of 16; 0
    /// turns the cache off). A token is remembered from its second verification on: of a token
    /// seen once the cache keeps only an 8-byte keyed hash, so tokens used once (a stream of
    /// distinct ones) evict nothing.
    #[must_use]
    pub fn verified_token_cache(mut self, capacity: usize) -> Self {
        self.verified_capacity = capacity;
        self
    }

    /// The most memory the verified-token cache may hold, in bytes, counting each entry as
    /// twice its token plus 256 bytes (default 32 MiB: 10,000 tokens of 1.5 KB; 0 turns the
    /// cache off). With the entry bound, this keeps a flood of large valid tokens from
    /// growing the cache past it.
    #[must_use]
    pub fn verified_token_cache_bytes(mut self, bytes: usize) -> Self {
        self.verified_bytes = bytes;
        self
    }

    /// Adds a claims check of the bot's own: it runs after every built-in rule has passed, on
    /// every request (a verified-token cache hit included), sees the verified claims and the
    /// activity, and can refuse with a reason. The refusal is
    /// [`ErrorKind::ClaimsCheck`](crate::ErrorKind::ClaimsCheck): the layer answers its fixed 401
    /// (the handler does not run) and logs the reason. Several checks run in the order added;
    /// the first refusal wins. See the crate documentation for a one-tenant example.
    #[must_use]
    pub fn claims_check<F>(self, check: F) -> Self
    where
        F: Fn(&BotClaims, &ActivityInfo<'_>) -> Result<(), ClaimsRejection> + Send + Sync + 'static,
    {
        self.claims_checker(Arc::new(check))
    }

    /// Adds a claims check given as a [`ClaimsCheck`] trait object (see
    /// [`claims_check`](Self::claims_check) for closures).
    #[must_use]
    pub fn claims_checker(mut self, check: Arc<dyn ClaimsCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Uses this JWKS document for the profile whose metadata URL is `metadata_url`, and never
    /// fetches it: for offline validation and tests.
    #[must_use]
    pub fn fixed_jwks(mut self, metadata_url: impl Into<String>, jwks: Value) -> Self {
        self.fixed.push((metadata_url.into(), jwks));
        self
    }

    /// Checks the configuration and builds the validator.
    pub fn build(self) -> Result<Validator> {
        let app_id = self.app_id.trim().to_owned();
        if app_id.is_empty() {
            return Err(Error::config(
                "app_id",
                "the bot's app id is empty: set it to the bot's Microsoft App ID",
            ));
        }
        if self.bot_service.is_empty()
            && self.entra.is_none()
            && self.emulator.is_none()
            && self.skills.is_none()
        {
            return Err(Error::config(
                "profiles",
                "no trust profile is enabled: add at least BotServiceProfile::public()",
            ));
        }
        // Keys younger than the refresh interval are used without a second look, so a refresh
        // interval past the max-stale bound would let keys outlive that bound.
        if self.timing.refresh_every > self.timing.max_stale {
            return Err(Error::config(
                "key_refresh_interval",
                "is longer than max_stale: keys would be trusted past the max-stale bound; \
                 shorten the refresh interval or raise max_stale",
            ));
        }
        if self.algorithms.is_empty() {
            return Err(Error::config(
                "algorithms",
                "the algorithm allow-list is empty",
            ));
        }
        if let Some(skills) = &self.skills {
            if !skills.has_callers() {
                return Err(Error::config(
                    "skills.allowed_callers",
                    "skills need an allowed-callers list (app ids, or `*` to accept any bot)",
                ));
            }
        }
        let skew = i64::try_from(self.skew.as_secs()).unwrap_or(i64::MAX);
        let fixed: HashMap<String, Value> = self.fixed.into_iter().collect();
        if let Err(e) = self.settings.refuse_authority_host("the inbound validator") {
            return Err(Error::config("authority_host", e.to_string()));
        }
        let clock = self.settings.clock_or_system();
        let http = self.settings.http_options_or(HttpOptions {
            timeout: Duration::from_secs(10),
            ..HttpOptions::default()
        });
        let mut client = self.settings.given_http_client().cloned();
        let mut caches: HashMap<String, Arc<KeyCache>> = HashMap::new();
        let mut cache_for = |url: &str| -> Result<Arc<KeyCache>> {
            let url = botauth_core::internal::endpoint::check_endpoint_url("metadata_url", url)
                .map_err(|e| Error::config("metadata_url", e.to_string()))?;
            if let Some(c) = caches.get(&url) {
                return Ok(Arc::clone(c));
            }
            let cache = match fixed.get(&url) {
                Some(doc) => {
                    let keys = parse_jwks(doc, &url)
                        .map_err(|e| Error::config("fixed_jwks", e.to_string()))?;
                    KeyCache::fixed(url.clone(), keys, Arc::clone(&clock))
                }
                None => {
                    let client = match &client {
                        Some(c) => Clone::clone(c),
                        None => {
                            let c = crate::keys::client(&http)?;
                            client = Some(c.clone());
                            c
                        }
                    };
                    KeyCache::http(url.clone(), client, http, self.timing, Arc::clone(&clock))
                }
            };
            let cache = Arc::new(cache);
            caches.insert(url, Arc::clone(&cache));
            Ok(cache)
        };

        let mut issuers: HashMap<Arc<str>, IssuerRules> = HashMap::new();
        let mut add = |issuer: String, target: IssuerRules| -> Result<()> {
            if issuers.insert(issuer.into(), target).is_some() {
                return Err(Error::config(
                    "issuer",
                    "two trust profiles claim the same issuer; configure each issuer once",
                ));
            }
            Ok(())
        };
        for profile in &self.bot_service {
            if profile.issuer.is_empty() {
                return Err(Error::config(
                    "issuer",
                    "a Bot Service profile has an empty issuer",
                ));
            }
            let keys = cache_for(&profile.metadata_url)?;
            add(
                profile.issuer.clone(),
                IssuerRules::BotService {
                    keys,
                    caller_id: profile.caller_id.as_deref().map(Arc::from),
                },
            )?;
        }

        // Entra-style issuers: each (hosts, tenant) once, with every profile that accepts it.
        let mut entra_like: Vec<(EntraHosts, String, EntraRules)> = Vec::new();
        let mut merge = |hosts: &EntraHosts, tenant: &str, f: &dyn Fn(&mut EntraRules)| {
            if let Some((_, _, rules)) = entra_like
                .iter_mut()
                .find(|(h, t, _)| h == hosts && t == tenant)
            {
                f(rules);
            } else {
                let mut rules = EntraRules::default();
                f(&mut rules);
                entra_like.push((hosts.clone(), tenant.to_owned(), rules));
            }
        };
        if let Some(entra) = &self.entra {
            for tenant in &entra.tenants {
                if tenant.is_empty() || tenant == "common" || tenant == "organizations" {
                    return Err(Error::config(
                        "entra.tenant",
                        "an Entra profile needs a specific tenant id (not empty, `common` or `organizations`)",
                    ));
                }
                merge(&entra.hosts, tenant, &|r| {
                    r.entra = Some(entra.allowed_callers.clone());
                });
            }
        }
        if let Some(emulator) = &self.emulator {
            for tenant in bot_framework_tenants(&emulator.extra_tenants) {
                merge(&emulator.hosts, tenant, &|r| r.emulator = true);
            }
        }
        if let Some(skills) = &self.skills {
            for tenant in bot_framework_tenants(&skills.extra_tenants) {
                merge(&skills.hosts, tenant, &|r| {
                    r.skills = Some(skills.allowed_callers.clone());
                });
            }
        }
        for (hosts, tenant, rules) in entra_like {
            // Single-tenant Entra validation reads the tenant's own metadata; emulator and skill
            // tokens come from several tenants and use `common`.
            let metadata = if rules.entra.is_some() {
                hosts.metadata_url(&tenant)
            } else {
                hosts.metadata_url("common")
            };
            let keys = cache_for(&metadata)?;
            let tenant_id: Arc<str> = Arc::from(tenant.as_str());
            for v2 in [false, true] {
                let issuer = if v2 {
                    hosts.v2_issuer(&tenant)
                } else {
                    hosts.v1_issuer(&tenant)
                };
                add(
                    issuer,
                    IssuerRules::Entra {
                        keys: Arc::clone(&keys),
                        tenant: Arc::clone(&tenant_id),
                        v2,
                        rules: rules.clone(),
                    },
                )?;
            }
        }
        if let Some(url) = fixed.keys().find(|u| !caches.contains_key(*u)) {
            return Err(Error::config(
                "fixed_jwks",
                format!("{url} is not the metadata URL of any enabled profile"),
            ));
        }

        let mut channel_audiences: Vec<Arc<str>> = vec![Arc::from(app_id.as_str())];
        channel_audiences.extend(self.extra_audiences.iter().map(|a| Arc::from(a.as_str())));
        let mut entra_audiences = channel_audiences.clone();
        entra_audiences.insert(1, Arc::from(format!("api://{app_id}")));
        let mut caches: Vec<Arc<KeyCache>> = caches.into_values().collect();
        caches.sort_by(|a, b| a.metadata_url().cmp(b.metadata_url()));
        // Tells this validator's verified tokens from another's (see `check_activity`).
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        Ok(Validator {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                app_id,
                channel_audiences,
                entra_audiences,
                issuers,
                caches,
                algorithms: self.algorithms,
                skew,
                strict_endorsements: self.strict_endorsements,
                limits: self.limits,
                clock,
                verified: VerifiedCache::new(self.verified_capacity, self.verified_bytes),
                known_header: ArcSwapOption::empty(),
                checks: self.checks,
                metrics: telemetry::Metrics::new(),
            }),
        })
    }
}

/// The authority host of an Entra v2 metadata URL (`{authority}/{tenant}/v2.0/.well-known/openid-configuration`),
/// the form the Entra-style profiles derive their metadata from.
fn authority_of_metadata(key: &str, url: &str) -> Result<String> {
    let url =
        botauth_core::internal::endpoint::check_endpoint_url(key, url).map_err(|e| match e {
            botauth_core::Error::Config { message, .. } => Error::config(key, message),
            other => Error::config(key, other.to_string()),
        })?;
    url.strip_suffix("/v2.0/.well-known/openid-configuration")
        .and_then(|rest| rest.rsplit_once('/'))
        .map(|(authority, _tenant)| authority.to_owned())
        .filter(|a| a.contains("://") && a.split("://").nth(1).is_some_and(|h| !h.is_empty()))
        .ok_or_else(|| {
            Error::config(
                key,
                "must be an Entra v2 metadata URL: `<authority>/<tenant or common>/v2.0/.well-known/openid-configuration`",
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authority_host_is_refused_not_ignored() {
        let e = Validator::builder("app")
            .bot_service(BotServiceProfile::public())
            .settings(ClientSettings::new().authority_host("https://login.microsoftonline.com"))
            .build()
            .unwrap_err();
        assert!(
            matches!(e, Error::Config { ref key, .. } if key == "authority_host"),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("the inbound validator does not request tokens"),
            "{e}"
        );
    }

    #[test]
    fn configuration_errors_name_the_setting() {
        let key = |b: ValidatorBuilder| match b.build().unwrap_err() {
            Error::Config { key, .. } => key,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            key(Validator::builder(" ").bot_service(BotServiceProfile::public())),
            "app_id"
        );
        assert_eq!(key(Validator::builder("app")), "profiles");
        assert_eq!(
            key(Validator::builder("app")
                .bot_service(BotServiceProfile::public())
                .algorithms([])),
            "algorithms"
        );
        assert_eq!(
            key(
                Validator::builder("app").skills(SkillProfile::new(AllowedCallers::from_list(
                    Vec::<String>::new()
                )))
            ),
            "skills.allowed_callers"
        );
        assert_eq!(
            key(Validator::builder("app")
                .bot_service(BotServiceProfile::custom("http://example.com/m", "iss"))),
            "metadata_url"
        );
        assert_eq!(
            key(Validator::builder("app")
                .bot_service(BotServiceProfile::public())
                .bot_service(BotServiceProfile::custom(
                    "https://example.com/m",
                    "https://api.botframework.com"
                ))),
            "issuer"
        );
        assert_eq!(
            key(Validator::builder("app").entra(EntraProfile::new("common"))),
            "entra.tenant"
        );
        assert_eq!(
            key(Validator::builder("app")
                .bot_service(BotServiceProfile::public())
                .fixed_jwks("https://example.com/other", serde_json::json!({"keys": []}))),
            "fixed_jwks"
        );
        let ok = Validator::builder("app")
            .bot_service(BotServiceProfile::public())
            .bot_service(BotServiceProfile::us_gov())
            .bot_service(BotServiceProfile::china())
            .entra(EntraProfile::new("T1"))
            .emulator(EmulatorProfile::new().tenant("t1"))
            .skills(SkillProfile::new(AllowedCallers::Any))
            .build()
            .unwrap();
        // Three Bot Service clouds, tenant t1, and `common` for the emulator/skill tenants.
        assert_eq!(ok.inner.caches.len(), 5);
        assert_eq!(ok.inner.issuers.len(), 3 + 2 * 3);
        assert_eq!(
            ok.inner.entra_audiences,
            [Arc::from("app"), Arc::from("api://app")]
        );
    }
}
