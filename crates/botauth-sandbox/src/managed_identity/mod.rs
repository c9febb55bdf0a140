//! Managed identity endpoints (docs/protocol.md §4): IMDS, App Service, Azure Arc, Cloud Shell, Service
//! Fabric (over TLS, on its own listener) and Azure ML. Each checks its secret header and its
//! api-version exactly, answering 400 or 401 as the real endpoint does, and issues tokens signed
//! by the sandbox's managed identity key, which the token endpoint accepts as federated
//! assertions when an app has a matching federated identity credential.
//!
//! What differs between the endpoints is one row each of [`spec::SPECS`], mirroring the client's
//! `Spec` table in `botauth-managed-identity`; `endpoints.rs` holds the one handler they share and
//! the two that have a protocol of their own (Arc's challenge, Cloud Shell's form).

pub(crate) mod endpoints;
pub(crate) mod handle;
pub(crate) mod identity;
pub(crate) mod service_fabric_listener;
pub(crate) mod spec;
