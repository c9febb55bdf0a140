//! The bot's own claims checks: rules of the application (one tenant, a list of teams, a caller
//! it knows) that run after botauth's rules, on every request, cached token or not.
//!
//! A check sees the verified [`BotClaims`] and the [`ActivityInfo`] (with the whole activity when
//! the layer checks a request) and answers with a [`ClaimsRejection`] whose reason goes to
//! `tracing`, never to the caller: the layer answers the same fixed 401 as for a bad token.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use crate::claims::BotClaims;
use crate::validator::ActivityInfo;

/// Why a [claims check](crate::ValidatorBuilder::claims_check) refused a request. The reason is logged (through `tracing`, with the
/// rejection's kind [`ErrorKind::ClaimsCheck`](crate::ErrorKind::ClaimsCheck)); the caller only
/// sees the layer's fixed 401.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimsRejection {
    reason: Cow<'static, str>,
}

impl ClaimsRejection {
    /// A rejection for `reason`, e.g. `"the activity is not from the Contoso tenant"`. Prefer
    /// fixed words: values from the request are the caller's, and a log is no place for a
    /// token.
    pub fn new(reason: impl Into<Cow<'static, str>>) -> Self {
        ClaimsRejection {
            reason: reason.into(),
        }
    }

    pub(crate) fn into_reason(self) -> Cow<'static, str> {
        self.reason
    }
}

impl fmt::Display for ClaimsRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for ClaimsRejection {}

/// A check of the bot's own, run by the [`Validator`](crate::Validator) after every built-in
/// rule has passed, on the full path and on a verified-token cache hit alike (see
/// [`ValidatorBuilder::claims_check`](crate::ValidatorBuilder::claims_check)): any
/// `Fn(&BotClaims, &ActivityInfo<'_>) -> Result<(), ClaimsRejection> + Send + Sync`.
pub(crate) trait ClaimsCheck: Send + Sync {
    /// `Ok(())` admits the request; `Err` refuses it with a reason for the log.
    fn check(&self, claims: &BotClaims, activity: &ActivityInfo<'_>)
    -> Result<(), ClaimsRejection>;
}

impl<F> ClaimsCheck for F
where
    F: Fn(&BotClaims, &ActivityInfo<'_>) -> Result<(), ClaimsRejection> + Send + Sync,
{
    fn check(
        &self,
        claims: &BotClaims,
        activity: &ActivityInfo<'_>,
    ) -> Result<(), ClaimsRejection> {
        self(claims, activity)
    }
}

/// The checks of one validator, in the order they were added.
#[derive(Clone, Default)]
pub(crate) struct ClaimsChecks(Vec<Arc<dyn ClaimsCheck>>);

impl ClaimsChecks {
    pub(crate) fn push(&mut self, check: Arc<dyn ClaimsCheck>) {
        self.0.push(check);
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Runs every check; the first refusal wins.
    pub(crate) fn run(
        &self,
        claims: &BotClaims,
        activity: &ActivityInfo<'_>,
    ) -> Result<(), ClaimsRejection> {
        self.0
            .iter()
            .try_for_each(|check| check.check(claims, activity))
    }
}

impl fmt::Debug for ClaimsChecks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Closures have no Debug; the count is what a reader of the configuration needs.
        write!(f, "{} claims check(s)", self.0.len())
    }
}
