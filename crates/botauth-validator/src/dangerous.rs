//! What weakens validation, kept apart so that it is never used by accident.

use crate::validator::ActivityInfo;

/// An [`ActivityInfo`] that checks neither the `serviceurl` claim against an activity nor the
/// key's endorsements against a channel: for diagnostics on a token alone, as `botauth validate`
/// does without `--service-url` / `--channel-id`. Every other rule still applies (a channel token
/// must still carry `serviceurl`).
///
/// Never use it for requests: a token issued for one `serviceUrl` would then be accepted on an
/// activity that names another, which is where the bot sends its replies (and its token).
/// [`ActivityInfo::with_service_url`] and [`ActivityInfo::with_channel_id`] turn either check
/// back on.
pub fn unchecked_activity() -> ActivityInfo<'static> {
    ActivityInfo::unchecked()
}
