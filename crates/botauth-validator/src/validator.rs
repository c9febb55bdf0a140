//! The [`Validator`]: trust profiles, key caches and the verified-token cache of one bot.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwapOption;
use botauth_core::{BotAuthConfig, Clock};
use serde_json::Value;
use tracing::Instrument as _;

use crate::builder::ValidatorBuilder;
use crate::check::ClaimsChecks;
use crate::claims::{BotClaims, Parts};
use crate::error::{Error, Result};
use crate::jwk::Jwk;
use crate::jwt::{self, Algorithm, Limits, PayloadBuf};
use crate::keys::KeyCache;
use crate::memo::KeyCheck;
use crate::profile::{AllowedCallers, ProfileKind};
use crate::rules;
use crate::telemetry;
use crate::verified_cache::{Verified, VerifiedCache, VerifiedToken};

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

#[derive(Debug, Clone, Default)]
pub(crate) struct EntraRules {
    /// `Some(callers)` when the single-tenant Entra profile covers this tenant.
    pub(crate) entra: Option<Option<AllowedCallers>>,
    pub(crate) emulator: bool,
    pub(crate) skills: Option<AllowedCallers>,
}

#[derive(Debug)]
pub(crate) enum IssuerRules {
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
    pub(crate) inner: Arc<Inner>,
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
pub(crate) struct Inner {
    pub(crate) id: u64,
    pub(crate) app_id: String,
    pub(crate) channel_audiences: Vec<Arc<str>>,
    pub(crate) entra_audiences: Vec<Arc<str>>,
    /// Keyed by `iss`; the key is also the verified claims' issuer.
    pub(crate) issuers: HashMap<Arc<str>, IssuerRules>,
    pub(crate) caches: Vec<Arc<KeyCache>>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) skew: i64,
    pub(crate) strict_endorsements: bool,
    pub(crate) limits: Limits,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) verified: VerifiedCache,
    /// The header of the last token whose signature verified (see [`jwt::KnownHeader`]).
    pub(crate) known_header: ArcSwapOption<jwt::KnownHeader>,
    pub(crate) checks: ClaimsChecks,
    /// Metric handles, registered when the validator was built (docs/observability.md).
    pub(crate) metrics: telemetry::Metrics,
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
    signed: jwt::Signed<'t>,
    /// Decoded before any key is looked up: a signature that is not even base64url is
    /// malformed, and no reason to fetch keys.
    signature: jwt::Signature,
    keys: &'t Arc<KeyCache>,
    nbf: Option<i64>,
    exp: i64,
    /// The claims as they will be kept.
    parts: Parts,
}

/// Room for the scheme and the blanks around the token in an `Authorization` header, on top of
/// the token limit: `Bearer ` and a little slack for senders that pad.
const AUTHORIZATION_OVERHEAD: usize = 64;

use botauth_core::internal::date::unix_seconds as unix;

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
        jwt::bearer(header)
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
            jwt::parse(
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
            IssuerRules::BotService { .. } => &inner.channel_audiences,
            IssuerRules::Entra { .. } => &inner.entra_audiences,
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
            IssuerRules::BotService { keys, caller_id } => {
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
            IssuerRules::Entra {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use crate::profile::BotServiceProfile;
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
        let wiped = crate::verified_cache::tests::wiped();
        let claims = v.validate(&once, activity).await.unwrap();
        assert_eq!(v.inner.verified.len(), 0);
        drop(claims);
        assert_eq!(crate::verified_cache::tests::wiped() - wiped, 1);

        let twice = token("twice");
        v.validate(&twice, activity).await.unwrap();
        // The slot hash is keyed at random per process: a distinct token that happens to share
        // the repeated one's doorkeeper place (about 1 in 80 runs for 50 tokens) pushes it out by
        // design, so such tokens are left out of the stream.
        let mut sent = 0;
        for i in 0.. {
            let distinct = token(&format!("distinct-{i}"));
            if v.inner.verified.share_a_doorkeeper_place(&distinct, &twice) {
                continue;
            }
            v.validate(&distinct, activity).await.unwrap();
            sent += 1;
            if sent == 50 {
                break;
            }
        }
        assert_eq!(v.inner.verified.len(), 0);
        let claims = v.validate(&twice, activity).await.unwrap();
        assert_eq!(v.inner.verified.len(), 1);
        // The entry answers from now on: the same claims, shared.
        let hit = v.validate(&twice, activity).await.unwrap();
        assert!(claims.same_as(&hit));
    }
}
