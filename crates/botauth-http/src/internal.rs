//! Not part of botauth's public API: shared between botauth's own crates; no stability promise.
//!
//! The response handling (bounded bodies, `Retry-After`, transport errors, cleaned server text),
//! the check of a parsed `access_token`, the client with an injected proxy environment and the
//! way builders read their [`ClientSettings`](crate::ClientSettings). Applications use
//! [`ClientSettings`](crate::ClientSettings), [`HttpOptions`](crate::HttpOptions) and
//! [`build_client`](crate::build_client).

pub use crate::bearer::{
    UNSENDABLE_TOKEN, check_access_token, is_sendable_token, is_sendable_token_type,
};
pub use crate::client::{CLIENT_SKU, CLIENT_VERSION, build_client_with_env};
pub use crate::response::{clean_text, display_endpoint, read_body, retry_after, transport_error};
pub use crate::settings::ResolveSettings;
