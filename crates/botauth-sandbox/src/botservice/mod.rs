//! The Bot Service side (docs/protocol.md §6): OpenID metadata, JWKS with endorsements, and channel tokens.

pub(crate) mod endpoints;
pub(crate) mod keys;
