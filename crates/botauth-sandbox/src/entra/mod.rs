//! The Entra ID side (docs/protocol.md §2): the client-credentials token endpoint (`token.rs`),
//! and the OpenID metadata, JWKS and instance discovery that name it (`discovery.rs`).

pub(crate) mod discovery;
pub(crate) mod token;
