//! The web console (`/console`, see `docs/console.md`): a chat with a bot beside an inspector of
//! every token that crosses the sandbox in either direction, and one-click faults.
//!
//! What the page may see, and why (the threat model of a page that shows credentials):
//!
//! - **Tokens are shown decoded, never whole.** Header and claims are what a developer needs to
//!   see why a token was refused; the signature is what makes a bearer token usable, so it is
//!   elided ([`redact::Decoded`]). A page left open on a shared screen, a screenshot in a bug
//!   report or a browser extension then holds nothing that authenticates.
//! - **Secrets are named, not shown.** A client secret appears as `[redacted]` and its length; a
//!   managed identity endpoint's secret header as present or missing; `x5c` certificates as
//!   subject and thumbprint. Private keys never reach the sandbox at all.
//! - **A last scrub.** Every event passes through [`redact::scrub`] before it is stored or sent:
//!   registered secrets, PEM blocks and anything shaped like a signed JWT are cut, whatever a
//!   future event kind forgets.
//! - **Only this machine drives it.** See [`http`]: loopback `Host` only (DNS rebinding), JSON
//!   actions from the console's own origin only (cross-site requests), a strict
//!   Content-Security-Policy and no third-party assets (the page works offline).
//! - **What bots send is data.** Claims, activity text and card titles are attacker-controlled;
//!   the page inserts them as text (`textContent`), never as HTML, and follows only `http(s)`
//!   links.

mod actions;
mod capture;
pub(crate) mod command;
mod event;
pub(crate) mod http;
mod redact;
mod sign_in;

pub use actions::Console;
pub(crate) use capture::capture;
pub use command::ChatTarget;
pub(crate) use event::Hub;
pub(crate) use http::{is_loopback_host, router};
