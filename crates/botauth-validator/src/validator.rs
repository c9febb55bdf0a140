//! The [`Validator`]: trust profiles, key caches and the verified-token cache of one bot.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use botauth_core::{BotAuthConfig, Clock, Cloud};
use botauth_http::{ClientSettings, HttpOptions};
use serde_json::Value;
use tracing::Instrument as _;

use crate::check::{ClaimsCheck, ClaimsChecks, ClaimsRejection};
use crate::claims::{BotClaims, Parts};
use crate::error::{Error, Result};
use crate::keys::{Jwk, KeyCache, KeyTiming, parse_jwks};
use crate::memo::KeyCheck;
use crate::profile::{
    AllowedCallers, BotServiceProfile, EmulatorProfile, EntraHosts, EntraProfile, ProfileKind,
    SkillProfile, bot_framework_tenants,
};
use crate::rules;
use crate::telemetry;
use crate::token::{self, Algorithm, Limits, PayloadBuf};
use crate::verified::{Verified, VerifiedCache, VerifiedToken};

/// The verified-token cache's default byte bound.
const DEFAULT_VERIFIED_BYTES: usize = 32 << 20;

/// What the activity says about itself: the values the token's claims must agree with, and
/// (from [`ActivityInfo::from_activity`]) the whole activity for the bot's claims checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActivityInfo<'a> {
    service_url: Option<&'a str>,
    channel_id: Option<&'a str>,
    activity: Option<&'a Value>,
}

impl<'a> ActivityInfo<'a> {
    /// The activity's `serviceUrl` and `channelId` (empty strings when the activity lacks them:
    /// they then match nothing).
    pub fn new(service_url: &'a str, channel_id: &'a str) -> Self {
        ActivityInfo {
            service_url: Some(service_url),
            channel_id: Some(channel_id),
            activity: None,
        }
    }

    /// A parsed activity: its `serviceUrl` and `channelId` (as empty strings when absent or not
    /// strings, so that they match nothing), and the activity itself, which
    /// [claims checks](ValidatorBuilder::claims_check) can read. This is what
    /// [`BotAuthLayer`](crate::BotAuthLayer) passes.
    pub fn from_activity(activity: &'a Value) -> Self {
        let text = |name: &str| activity.get(name).and_then(Value::as_str).unwrap_or("");
        ActivityInfo {
            service_url: Some(text("serviceUrl")),
            channel_id: Some(text("channelId")),
            activity: Some(activity),
        }
    }

    /// Nothing to compare with: see [`dangerous::unchecked_activity`](crate::dangerous::unchecked_activity).
    pub(crate) fn unchecked() -> Self {
        ActivityInfo {
            service_url: None,
            channel_id: None,
            activity: None,
        }
    }

    /// The `serviceUrl` the token's `serviceurl` claim is compared with (`None`: not compared).
    pub fn service_url(&self) -> Option<&'a str> {
        self.service_url
    }

    /// The `channelId` the signing key must endorse (`None`: not checked).
    pub fn channel_id(&self) -> Option<&'a str> {
        self.channel_id
    }

    /// The whole activity, when this was made by [`ActivityInfo::from_activity`]. A claims
    /// check that needs a field of it should refuse when it is `None`, not admit.
    pub fn activity(&self) -> Option<&'a Value> {
        self.activity
    }

    /// Sets the `serviceUrl` to compare with.
    #[must_use]
    pub fn with_service_url(mut self, service_url: &'a str) -> Self {
        self.service_url = Some(service_url);
        self
    }

    /// Sets the `channelId` the key must endorse.
    #[must_use]
    pub fn with_channel_id(mut self, channel_id: &'a str) -> Self {
        self.channel_id = Some(channel_id);
        self
    }
}

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
    fn new(app_id: String) -> Self {
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
            let url = botauth_core::config::check_endpoint_url("metadata_url", url)
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

        let mut issuers: HashMap<Arc<str>, Target> = HashMap::new();
        let mut add = |issuer: String, target: Target| -> Result<()> {
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
                Target::BotService {
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
                    Target::Entra {
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

#[derive(Debug, Clone, Default)]
struct EntraRules {
    /// `Some(callers)` when the single-tenant Entra profile covers this tenant.
    entra: Option<Option<AllowedCallers>>,
    emulator: bool,
    skills: Option<AllowedCallers>,
}

#[derive(Debug)]
enum Target {
    BotService {
        keys: Arc<KeyCache>,
        caller_id: Option<Arc<str>>,
    },
    Entra {
        keys: Arc<KeyCache>,
        tenant: Arc<str>,
        v2: bool,
        rules: EntraRules,
    },
}

/// Validates the JWTs on inbound activities for one bot (docs/protocol.md §6).
///
/// Cheap to clone; clones share the key caches and the verified-token cache.
#[derive(Clone)]
pub struct Validator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut issuers: Vec<&str> = self.inner.issuers.keys().map(|i| &**i).collect();
        issuers.sort_unstable();
        let metadata: Vec<&str> = self.inner.caches.iter().map(|c| c.metadata_url()).collect();
        f.debug_struct("Validator")
            .field("app_id", &self.inner.app_id)
            .field("issuers", &issuers)
            .field("metadata", &metadata)
            .field("algorithms", &self.inner.algorithms)
            .field("strict_endorsements", &self.inner.strict_endorsements)
            .field("claims_checks", &self.inner.checks.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    id: u64,
    app_id: String,
    channel_audiences: Vec<Arc<str>>,
    entra_audiences: Vec<Arc<str>>,
    /// Keyed by `iss`; the key is also the verified claims' issuer.
    issuers: HashMap<Arc<str>, Target>,
    caches: Vec<Arc<KeyCache>>,
    algorithms: Vec<Algorithm>,
    skew: i64,
    strict_endorsements: bool,
    limits: Limits,
    clock: Arc<dyn Clock>,
    verified: VerifiedCache,
    /// The header of the last token whose signature verified (see [`token::KnownHeader`]).
    known_header: ArcSwapOption<token::KnownHeader>,
    checks: ClaimsChecks,
    /// Metric handles, registered when the validator was built (docs/observability.md).
    metrics: telemetry::Metrics,
}

/// Records how a validation ended on the current `botauth.validate` span.
pub(crate) fn record_outcome(result: &Result<BotClaims>) {
    telemetry::outcome(
        result.as_ref().ok().map(|c| c.profile().as_str()),
        result.as_ref().err(),
    );
}

/// What [`Validator::verify_new`] made of a token.
enum Verification<F> {
    /// Behind its `Arc` already: small, as what `verify_token`'s future holds must be.
    Done(Arc<Verified>),
    Awaiting(std::pin::Pin<Box<F>>),
}

/// A token judged up to its signature (see [`Validator::judge`]).
struct Judged<'t> {
    token: &'t str,
    signed: token::Signed<'t>,
    /// Decoded before any key is looked up: a signature that is not even base64url is
    /// malformed, and no reason to fetch keys.
    signature: token::Signature,
    keys: &'t Arc<KeyCache>,
    nbf: Option<i64>,
    exp: i64,
    /// The claims as they will be kept.
    parts: Parts,
}

/// Room for the scheme and the blanks around the token in an `Authorization` header, on top of
/// the token limit: `Bearer ` and a little slack for senders that pad.
const AUTHORIZATION_OVERHEAD: usize = 64;

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

impl Validator {
    /// A builder for the bot whose Microsoft App ID is `app_id`.
    pub fn builder(app_id: impl Into<String>) -> ValidatorBuilder {
        ValidatorBuilder::new(app_id.into())
    }

    /// The validator botauth's configuration describes (see [`ValidatorBuilder::from_config`]).
    pub fn from_config(config: &BotAuthConfig) -> Result<Validator> {
        ValidatorBuilder::from_config(config)?.build()
    }

    /// Copies held in the verified-token cache's per-thread memos.
    #[cfg(test)]
    pub(crate) fn memo_entries(&self) -> usize {
        self.inner.verified.memo_entries()
    }

    /// The bot's app id.
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// How many metadata + JWKS fetches this validator has started (all profiles).
    pub fn key_fetches(&self) -> u64 {
        self.inner.caches.iter().map(|c| c.fetch_count()).sum()
    }

    /// The start-up check: fetches the OpenID metadata and signing keys of every trust profile
    /// now (each once; a set already held is kept), so that a wrong metadata URL, a proxy that
    /// blocks it or a DNS failure shows when the bot starts instead of as 503s to the Bot Service.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::KeysUnavailable`](crate::ErrorKind::KeysUnavailable) naming the metadata
    /// endpoint, with the fetch's error as its source.
    pub async fn check_keys(&self) -> Result<()> {
        for cache in &self.inner.caches {
            cache.ensure().await?;
        }
        Ok(())
    }

    /// The largest token accepted, in bytes ([`ValidatorBuilder::max_token_bytes`]).
    pub fn max_token_bytes(&self) -> usize {
        self.inner.limits.max_token_bytes
    }

    /// The largest `Authorization` header value accepted: the token limit plus room for the
    /// scheme.
    pub(crate) fn max_authorization_bytes(&self) -> usize {
        self.inner
            .limits
            .max_token_bytes
            .saturating_add(AUTHORIZATION_OVERHEAD)
    }

    /// Validates an `Authorization` header value (`None` when the request had none) against an
    /// activity: [`verify_header`](Self::verify_header), then
    /// [`check_activity`](Self::check_activity).
    pub fn validate_header<'a>(
        &'a self,
        authorization: Option<&'a str>,
        activity: ActivityInfo<'a>,
    ) -> impl Future<Output = Result<BotClaims>> + Send + 'a {
        self.validated(move || self.verify_header(authorization), activity)
    }

    /// Validates a bare token against an activity: [`verify_token`](Self::verify_token), then
    /// [`check_activity`](Self::check_activity).
    ///
    /// Each call is a `botauth.validate` span (DEBUG level) with the profile, where the
    /// verification came from, the outcome and the rejection's kind; the same counts go to the
    /// `botauth.validations` and `botauth.validation.cache.lookups` metrics (feature `metrics`;
    /// docs/observability.md).
    pub fn validate<'a>(
        &'a self,
        token: &'a str,
        activity: ActivityInfo<'a>,
    ) -> impl Future<Output = Result<BotClaims>> + Send + 'a {
        self.validated(move || self.verify_token(token), activity)
    }

    /// `verify()`, then the activity's checks: a validation, inside a `botauth.validate` span
    /// when a subscriber takes DEBUG spans. The verification is made in each branch (not passed
    /// in made): a future passed by value is kept twice in this one.
    async fn validated<F, V>(&self, verify: F, activity: ActivityInfo<'_>) -> Result<BotClaims>
    where
        F: FnOnce() -> V,
        V: Future<Output = Result<VerifiedToken>>,
    {
        let Some(span) = telemetry::validate_span() else {
            return self.checked(verify().await, activity);
        };
        // Boxed: the traced path is taken only when a subscriber wants DEBUG spans, and must not
        // make every request's future larger.
        Box::pin(
            async move {
                let result = self.checked(verify().await, activity);
                record_outcome(&result);
                result
            }
            .instrument(span),
        )
        .await
    }

    /// The activity's checks of a verification (ours, and its time judged a moment ago).
    #[inline]
    fn checked(
        &self,
        verified: Result<VerifiedToken>,
        activity: ActivityInfo<'_>,
    ) -> Result<BotClaims> {
        match verified {
            Ok(token) => self.activity_checks(&token, activity),
            Err(e) => Err(e),
        }
    }

    /// The first half of [`validate_header`](Self::validate_header), for servers that
    /// authenticate before they read the body: the header's size (at most the token limit plus
    /// a few bytes for the scheme) before anything else, then `Bearer <one token>` (docs/protocol.md
    /// §6 rule 1), then [`verify_token`](Self::verify_token).
    pub async fn verify_header(&self, authorization: Option<&str>) -> Result<VerifiedToken> {
        // Bound first: a `match` around the await would keep the `Result` (and its error's
        // room) in the future.
        let token = match self.bearer(authorization) {
            Ok(token) => token,
            Err(e) => return self.counted(Err(e)),
        };
        self.verify_token(token).await
    }

    /// The token of an `Authorization` header: its size, then `Bearer <one token>`.
    fn bearer<'h>(&self, authorization: Option<&'h str>) -> Result<&'h str> {
        let header = authorization.ok_or(Error::MissingToken)?;
        let limit = self.max_authorization_bytes();
        if header.len() > limit {
            return Err(Error::TooLarge {
                part: "Authorization header",
                limit,
            });
        }
        token::bearer(header)
    }

    /// The first half of [`validate`](Self::validate): everything that does not need the
    /// activity — size, the JOSE header rules, `iss`, `aud`, `exp`/`nbf`, the profile's tenant
    /// and caller rules, the key and the signature (docs/protocol.md §6 rules 1–5 and 8). A
    /// token verified before is answered from the verified-token cache, with `exp`/`nbf` and
    /// the key's publication checked again.
    ///
    /// The result must still go through [`check_activity`](Self::check_activity) with the
    /// request's activity before the request is trusted.
    pub async fn verify_token(&self, token: &str) -> Result<VerifiedToken> {
        // Refusals are counted where they happen (`counted`): a wrapper around this function
        // would add its own state to the future every request builds.
        let inner = &*self.inner;
        if token.len() > inner.limits.max_token_bytes {
            return self.counted(Err(Error::TooLarge {
                part: "token",
                limit: inner.limits.max_token_bytes,
            }));
        }
        let cache = &inner.verified;
        // One clock reading for the whole check.
        let at = inner.clock.now();
        let now = unix(at);
        // This thread's copy first: a hit there writes to no memory other threads use.
        if let Some(result) = cache.memo_get(token, |v, key| self.recheck(v, key, now)) {
            inner.metrics.memo();
            return self.counted(result);
        }
        let slot = cache.slot(token);
        if let Some(hit) = cache.get(slot, token) {
            let mut key = KeyCheck::original(&hit.verified);
            match self.recheck(&hit.verified, &mut key, now) {
                Some(result) => {
                    if result.is_ok() {
                        cache.memo_offer(slot, token, &hit, &key);
                    }
                    inner.metrics.hit();
                    return self.counted(result);
                }
                // The key was withdrawn (or went stale): judge the token afresh.
                None => cache.remove(slot, token),
            }
        }
        inner.metrics.miss();
        // Bound first: a `match` on the call would keep its `Result` in the future's state.
        let outcome = match self.verify_new(token, at, now) {
            Ok(outcome) => outcome,
            Err(e) => return self.counted(Err(e)),
        };
        let (verified, now) = match outcome {
            Verification::Done(verified) => (verified, now),
            Verification::Awaiting(verified) => match verified.await {
                Ok(verified) => (Arc::new(verified), unix(inner.clock.now())),
                Err(e) => return self.counted(Err(e)),
            },
        };
        // Kept from its second verification on: a token seen once is not worth a copy.
        if cache.admit(slot) {
            cache.insert(slot, Arc::clone(&verified), now, inner.skew);
        }
        Ok(VerifiedToken {
            verified,
            refetched_key: None,
            validator: inner.id,
        })
    }

    /// `result`, its refusal counted (`botauth.validations`).
    pub(crate) fn counted<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(e) = &result {
            self.inner.metrics.ended(Some(e));
        }
        result
    }

    /// The second half of [`validate`](Self::validate): the rules that need the activity, run
    /// on every request whether the token came from the verified-token cache or not —
    /// `exp`/`nbf` once more (reading the body takes time), `serviceurl` equal to the
    /// activity's `serviceUrl`, the signing key endorsing its `channelId` (docs/protocol.md §6
    /// rules 5–7), then the bot's [claims checks](ValidatorBuilder::claims_check). Returns the
    /// verified claims.
    ///
    /// A token verified by another validator is refused with [`ErrorKind::Config`](crate::ErrorKind::Config):
    /// its issuers and audiences may not be this one's.
    pub fn check_activity(
        &self,
        token: &VerifiedToken,
        activity: ActivityInfo<'_>,
    ) -> Result<BotClaims> {
        let inner = &*self.inner;
        if token.validator != inner.id {
            return self.counted(Err(Error::config(
                "verified_token",
                "the token was verified by another Validator; check it with the validator that \
                 verified it",
            )));
        }
        let v = &token.verified;
        if let Err(e) = rules::check_time(unix(inner.clock.now()), v.nbf, v.exp, inner.skew) {
            return self.counted(Err(e));
        }
        self.activity_checks(token, activity)
    }

    /// `check_activity` after the validator and the time: the activity rules, then the claims
    /// checks.
    fn activity_checks(
        &self,
        token: &VerifiedToken,
        activity: ActivityInfo<'_>,
    ) -> Result<BotClaims> {
        let claims = &token.verified.claims;
        // Early returns, not a chain of closures over a `Result`: this runs on every request,
        // and the chain cost a verified-token cache hit measurably.
        if let Err(e) = self.activity_rules(
            claims.service_url(),
            token.key(),
            claims.profile(),
            activity,
        ) {
            return self.counted(Err(e));
        }
        if let Err(rejection) = self.inner.checks.run(claims, &activity) {
            return self.counted(Err(rejection.into()));
        }
        self.inner.metrics.ended(None);
        Ok(claims.clone())
    }

    /// Re-judges a cached verification: `exp`/`nbf` against the clock, and the key still
    /// published; `None` when its key is gone (or replaced under the same kid). `key` is where
    /// the key was last found current; it is updated when the keys were refetched since.
    fn recheck(
        &self,
        v: &Arc<Verified>,
        key: &mut KeyCheck,
        now: i64,
    ) -> Option<Result<VerifiedToken>> {
        let inner = &*self.inner;
        // Unless the keys were refetched since, the key found then still stands.
        if !v.keys.still_current(key.generation, now) {
            let (refetched, generation) = v.keys.cached(&v.kid)?;
            // The same kid for other key material is a new key: verify afresh.
            if !refetched.same_key(&v.key) {
                return None;
            }
            *key = KeyCheck {
                generation,
                refetched: Some(refetched),
            };
        }
        Some(
            rules::check_time(now, v.nbf, v.exp, inner.skew).map(|()| VerifiedToken {
                verified: Arc::clone(v),
                refetched_key: key.refetched.clone(),
                validator: inner.id,
            }),
        )
    }

    /// The rules that depend on the activity (docs/protocol.md §6 rules 6 and 7): `serviceurl`
    /// equals the activity's `serviceUrl`, and the signing key endorses its channel.
    fn activity_rules(
        &self,
        service_url: Option<&str>,
        key: &Jwk,
        profile: ProfileKind,
        activity: ActivityInfo<'_>,
    ) -> Result<()> {
        if let (Some(claim), Some(activity)) = (service_url, activity.service_url) {
            if !rules::same_service_url(claim, activity) {
                return Err(Error::ServiceUrl);
            }
        }
        rules::check_endorsements(
            key.endorsements(),
            activity.channel_id,
            self.strict_for(profile),
        )
    }

    /// A token not in the cache: [`judge`](Self::judge)d, then [`seal`](Self::seal)ed at once
    /// when the key set is fresh and knows its key, as it almost always is; otherwise a boxed
    /// future that awaits the key. Synchronous, so that the judged token is never part of
    /// `verify_token`'s future, whose size every cache hit pays for.
    fn verify_new<'t>(
        &'t self,
        token: &'t str,
        at: SystemTime,
        now: i64,
    ) -> Result<Verification<impl Future<Output = Result<Verified>> + 't>> {
        let judged = self.judge(token, now)?;
        Ok(match judged.keys.fresh(&judged.signed.kid, at) {
            Some((key, generation)) => {
                Verification::Done(Arc::new(self.seal(judged, key, generation)?))
            }
            None => Verification::Awaiting(Box::pin(self.verify(judged))),
        })
    }

    /// The rest of the check for a token whose key must be awaited (fetched, or refreshed).
    async fn verify(&self, judged: Judged<'_>) -> Result<Verified> {
        let (key, generation) = judged.keys.key(&judged.signed.kid).await?;
        self.seal(judged, key, generation)
    }

    /// Everything before the key: parse, header rules, claims, time, profile rules
    /// (docs/protocol.md §6 rules 1–5 and 8), at `now` (seconds since the Unix epoch).
    fn judge<'t>(&'t self, token: &'t str, now: i64) -> Result<Judged<'t>> {
        let inner = &*self.inner;
        let mut payload = PayloadBuf::new();
        let parsed = {
            let known = inner.known_header.load();
            token::parse(
                token,
                &inner.algorithms,
                &inner.limits,
                known.as_deref(),
                &mut payload,
            )?
        };
        let claims = &parsed.claims()?;
        let signature = parsed.signature()?;
        let iss = rules::required_string(claims, "iss")?;
        let (issuer, target) = inner.issuers.get_key_value(iss).ok_or(Error::Issuer)?;
        let accepted = match target {
            Target::BotService { .. } => &inner.channel_audiences,
            Target::Entra { .. } => &inner.entra_audiences,
        };
        let audience = Arc::clone(rules::audience(claims, accepted)?);
        let exp =
            rules::numeric_date(claims, "exp")?.ok_or(Error::MissingClaim { claim: "exp" })?;
        let nbf = rules::numeric_date(claims, "nbf")?;
        rules::check_time(now, nbf, exp, inner.skew)?;
        let service_url = rules::string_claim(claims, "serviceurl")?;
        let appid = rules::string_claim(claims, "appid")?;
        let azp = rules::string_claim(claims, "azp")?;

        // Only now, with a plausible token, may a key be looked up (and perhaps fetched).
        let (keys, profile, caller_id, app_id, tenant_id) = match target {
            Target::BotService { keys, caller_id } => {
                if service_url.is_none() {
                    return Err(Error::MissingClaim {
                        claim: "serviceurl",
                    });
                }
                let app_id = appid.or(azp).map(str::to_owned);
                (
                    keys,
                    ProfileKind::BotService,
                    caller_id.clone(),
                    app_id,
                    None,
                )
            }
            Target::Entra {
                keys,
                tenant,
                v2,
                rules: entra,
            } => {
                let (profile, caller) = self.entra_rules(claims, tenant, *v2, entra, appid, azp)?;
                let caller_id = match profile {
                    ProfileKind::Emulator => None,
                    _ => Some(Arc::from(format!("urn:botframework:aadappid:{caller}"))),
                };
                (
                    keys,
                    profile,
                    caller_id,
                    Some(caller.to_owned()),
                    Some(Arc::clone(tenant)),
                )
            }
        };
        let service_url = service_url.map(str::to_owned);
        Ok(Judged {
            keys,
            nbf,
            exp,
            parts: Parts {
                profile,
                app_id,
                issuer: Arc::clone(issuer),
                audience,
                service_url,
                caller_id,
                tenant_id,
                expires_at: exp,
                payload: parsed.payload_range(),
            },
            token,
            signed: parsed.signed,
            signature,
        })
    }

    /// The signature with `key`, then the verification as the cache keeps it.
    fn seal(&self, judged: Judged<'_>, key: Arc<Jwk>, generation: u64) -> Result<Verified> {
        let Judged {
            token,
            signed,
            signature,
            keys,
            nbf,
            exp,
            parts,
        } = judged;
        key.verify(signed.alg, signed.signing_input, &signature)?;
        if let Some(header) = signed.header_to_remember() {
            self.inner.known_header.store(Some(Arc::new(header)));
        }
        Ok(Verified {
            nbf,
            exp,
            kid: signed.kid,
            keys: Arc::clone(keys),
            key,
            generation,
            claims: BotClaims::new(parts, token),
        })
    }

    /// Strict endorsements concern Bot Service keys: Entra's keys never carry endorsements, so
    /// demanding them would refuse every Entra, emulator and skill token. A key that does list
    /// endorsements is held to them whatever the profile.
    fn strict_for(&self, profile: ProfileKind) -> bool {
        self.inner.strict_endorsements && profile == ProfileKind::BotService
    }

    /// `ver`, `tid` and caller rules of Entra-issued tokens (docs/protocol.md §6 rule 8 and the emulator
    /// rules); returns the profile that accepts the caller.
    fn entra_rules<'c>(
        &self,
        claims: &impl rules::Claims,
        tenant: &str,
        v2: bool,
        rules: &EntraRules,
        appid: Option<&'c str>,
        azp: Option<&'c str>,
    ) -> Result<(ProfileKind, &'c str)> {
        let ver = rules::required_string(claims, "ver")?;
        let token_v2 = match ver {
            "1.0" => false,
            "2.0" => true,
            _ => return Err(Error::ClaimType { claim: "ver" }),
        };
        // A v1 issuer issues v1 tokens; a mismatch means the token was not made by Entra.
        if token_v2 != v2 {
            return Err(Error::ClaimType { claim: "ver" });
        }
        let tid = rules::required_string(claims, "tid")?;
        if !tid.eq_ignore_ascii_case(tenant) {
            return Err(Error::Tenant);
        }
        let caller = if v2 {
            azp.ok_or(Error::MissingClaim { claim: "azp" })?
        } else {
            appid.ok_or(Error::MissingClaim { claim: "appid" })?
        };
        if let Some(callers) = &rules.entra {
            if callers.as_ref().is_none_or(|c| c.allows(caller)) {
                return Ok((ProfileKind::Entra, caller));
            }
        }
        if rules.emulator && caller.eq_ignore_ascii_case(&self.inner.app_id) {
            return Ok((ProfileKind::Emulator, caller));
        }
        if rules.skills.as_ref().is_some_and(|c| c.allows(caller)) {
            return Ok((ProfileKind::Skill, caller));
        }
        Err(Error::Caller)
    }
}

/// The authority host of an Entra v2 metadata URL (`{authority}/{tenant}/v2.0/.well-known/openid-configuration`),
/// the form the Entra-style profiles derive their metadata from.
fn authority_of_metadata(key: &str, url: &str) -> Result<String> {
    let url = botauth_core::config::check_endpoint_url(key, url).map_err(|e| match e {
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
    use crate::ErrorKind;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// Every call builds `verify_token`'s future, and a cache hit (the common request) pays for
    /// its size: the work on a token never seen before is synchronous or boxed, and must stay
    /// out of it (holding the judged token across the key's await tripled it once).
    #[test]
    fn the_verify_futures_stay_small() {
        let v = Validator::builder("app")
            .bot_service(BotServiceProfile::public())
            .build()
            .unwrap();
        let verify = v.verify_token("x");
        assert!(size_of_val(&verify) <= 96, "{}", size_of_val(&verify));
        let validate = v.validate("x", ActivityInfo::new("a", "b"));
        assert!(size_of_val(&validate) <= 224, "{}", size_of_val(&validate));
        let verify_header = v.verify_header(Some("Bearer x"));
        assert!(
            size_of_val(&verify_header) <= 128,
            "{}",
            size_of_val(&verify_header)
        );
        let validate_header = v.validate_header(Some("Bearer x"), ActivityInfo::new("a", "b"));
        assert!(
            size_of_val(&validate_header) <= 256,
            "{}",
            size_of_val(&validate_header)
        );
    }

    const APP: &str = "9e1f3c2a-0000-4000-8000-00000000b07a";
    const TEAMS: &str = "https://smba.trafficmanager.net/teams/";

    /// A sandbox, and a validator of its Bot Service tokens (RS256 only) for [`APP`].
    async fn bot_service() -> (botauth_sandbox::Sandbox, Validator) {
        let sandbox = botauth_sandbox::Sandbox::start().await.unwrap();
        let v = Validator::builder(APP)
            .bot_service(BotServiceProfile::custom(
                sandbox.bot_service_metadata_url(),
                sandbox.bot_service_issuer(),
            ))
            .algorithms([Algorithm::Rs256])
            .build()
            .unwrap();
        (sandbox, v)
    }

    /// The claims of a channel token for [`APP`] from [`TEAMS`], valid for an hour.
    fn channel_claims(sandbox: &botauth_sandbox::Sandbox, jti: &str) -> serde_json::Value {
        let now = unix(SystemTime::now());
        serde_json::json!({"iss": sandbox.bot_service_issuer(), "aud": APP,
            "serviceurl": TEAMS, "nbf": now, "exp": now + 3600, "jti": jti})
    }

    /// A token whose signature is not base64url is malformed before any key is looked up: an
    /// unknown `kid` under it fetches nothing.
    #[tokio::test]
    async fn a_malformed_signature_fetches_no_keys() {
        let (sandbox, v) = bot_service().await;
        let claims = channel_claims(&sandbox, "m");
        let activity = ActivityInfo::new(TEAMS, "msteams");
        // The keys are fetched once, for a genuine token.
        let kid = sandbox.bot_service_kid();
        let good = sandbox.sign_with_bot_service_key(
            &serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
            &claims,
        );
        v.validate(&good, activity).await.unwrap();
        let fetches = v.key_fetches();
        for kid in [kid.as_str(), "unknown-kid"] {
            let header = serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
            let token = sandbox.sign_with_bot_service_key(&header, &claims);
            let (input, _) = token.rsplit_once('.').unwrap();
            for signature in ["not*base64", "A", ""] {
                let bad = format!("{input}.{signature}");
                assert_eq!(
                    v.validate(&bad, activity).await.unwrap_err().kind(),
                    ErrorKind::Malformed,
                    "{kid} {signature:?}"
                );
            }
        }
        assert_eq!(v.key_fetches(), fetches);
    }

    /// Only the header of a token whose signature verified is remembered, and a remembered
    /// header changes no answer: a forged signature, a `crit` or a foreign algorithm under a
    /// header of the same kid are refused as before.
    #[tokio::test]
    async fn the_known_header_is_remembered_after_a_good_signature_only() {
        let (sandbox, v) = bot_service().await;
        let known = || v.inner.known_header.load_full();
        let kid = sandbox.bot_service_kid();
        let header = serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
        let claims = |jti: &str| channel_claims(&sandbox, jti);
        let activity = ActivityInfo::new(TEAMS, "msteams");
        let kind = |r: Result<BotClaims>| r.unwrap_err().kind();

        // A forged signature under the genuine header: refused, nothing remembered.
        let good = sandbox.sign_with_bot_service_key(&header, &claims("a"));
        let (input, _) = good.rsplit_once('.').unwrap();
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
        assert_eq!(
            kind(v.validate(&forged, activity).await),
            ErrorKind::BadSignature
        );
        assert!(known().is_none());
        // The genuine token: remembered.
        v.validate(&good, activity).await.unwrap();
        let remembered = known().unwrap();
        // The same header again: taken as known, and the forgery is still refused.
        v.validate(
            &sandbox.sign_with_bot_service_key(&header, &claims("b")),
            activity,
        )
        .await
        .unwrap();
        assert!(Arc::ptr_eq(&remembered, &known().unwrap()));
        let (input, _) = sandbox
            .sign_with_bot_service_key(&header, &claims("c"))
            .rsplit_once('.')
            .map(|(i, s)| (i.to_owned(), s.to_owned()))
            .unwrap();
        let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode([7u8; 256]));
        assert_eq!(
            kind(v.validate(&forged, activity).await),
            ErrorKind::BadSignature
        );
        // Other headers of the same key are judged in full.
        let crit = serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT", "crit": ["b64"]});
        let rs384 = serde_json::json!({"alg": "RS384", "kid": kid, "typ": "JWT"});
        for (other, expected) in [
            (crit, ErrorKind::CriticalHeader),
            (rs384, ErrorKind::Algorithm),
        ] {
            let token = sandbox.sign_with_bot_service_key(&other, &claims("d"));
            assert_eq!(kind(v.validate(&token, activity).await), expected);
        }
        assert!(Arc::ptr_eq(&remembered, &known().unwrap()));
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

    /// A token is kept in the verified-token cache from its second verification on: one seen
    /// once leaves no entry (and its copy is wiped when its claims go), a stream of distinct
    /// tokens leaves the cache empty, and a repeated one among them is still kept and served.
    #[tokio::test]
    async fn the_cache_keeps_tokens_seen_twice() {
        let (sandbox, v) = bot_service().await;
        let activity = ActivityInfo::new(TEAMS, "msteams");
        let kid = sandbox.bot_service_kid();
        let header = serde_json::json!({"alg": "RS256", "kid": kid, "typ": "JWT"});
        let token =
            |jti: &str| sandbox.sign_with_bot_service_key(&header, &channel_claims(&sandbox, jti));
        let once = token("once");
        let wiped = crate::verified::tests::wiped();
        let claims = v.validate(&once, activity).await.unwrap();
        assert_eq!(v.inner.verified.len(), 0);
        drop(claims);
        assert_eq!(crate::verified::tests::wiped() - wiped, 1);

        let twice = token("twice");
        v.validate(&twice, activity).await.unwrap();
        for i in 0..50 {
            v.validate(&token(&format!("distinct-{i}")), activity)
                .await
                .unwrap();
        }
        assert_eq!(v.inner.verified.len(), 0);
        let claims = v.validate(&twice, activity).await.unwrap();
        assert_eq!(v.inner.verified.len(), 1);
        // The entry answers from now on: the same claims, shared.
        let hit = v.validate(&twice, activity).await.unwrap();
        assert!(claims.same_as(&hit));
    }
}
