//! The sandbox as the Bot Framework Token Service (docs/user-sign-in.md, docs/protocol.md §8):
//! OAuth connections, user tokens behind a sign-in link and a 6-digit magic code, Teams SSO token
//! exchange, and the channel's sign-in activities. Written from the protocol, not from botauth's
//! client: it is the oracle that client is judged by.
//!
//! `state.rs` holds what the service remembers, `endpoints.rs` its REST API, `sign_in.rs` the
//! user's side (the sign-in page) and the channel's (the sign-in activity sent to the bot), and
//! `handle.rs` the [`Sandbox`](crate::Sandbox) methods that drive it from a test.

pub(crate) mod endpoints;
pub(crate) mod handle;
pub(crate) mod sign_in;
pub(crate) mod state;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post};

use crate::state::Shared;
use endpoints::{
    exchange, get_aad_tokens, get_sign_in_resource, get_sign_in_url, get_token, get_token_status,
    sign_out, teams_sso_token,
};
use sign_in::sign_in_page;

/// The Token Service's routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/usertoken/GetToken", get(get_token))
        .route("/api/usertoken/GetAadTokens", post(get_aad_tokens))
        .route("/api/usertoken/SignOut", delete(sign_out))
        .route("/api/usertoken/GetTokenStatus", get(get_token_status))
        .route("/api/usertoken/exchange", post(exchange))
        .route(
            "/api/botsignin/GetSignInResource",
            get(get_sign_in_resource),
        )
        .route("/api/botsignin/GetSignInUrl", get(get_sign_in_url))
        .route("/api/sandbox/signin", get(sign_in_page))
        .route("/api/sandbox/teams-sso-token", get(teams_sso_token))
}
