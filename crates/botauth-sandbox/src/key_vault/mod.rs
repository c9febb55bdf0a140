//! The sandbox as Azure Key Vault (docs/sandbox.md §7; what clients do with it is
//! docs/protocol.md §9, "Key Vault source"): one vault at the root of the sandbox's origin holding certificates
//! with versions, read over REST with a bearer token for [`KEY_VAULT_RESOURCE`](store::KEY_VAULT_RESOURCE).
//!
//! Why it is shaped this way:
//!
//! - **Rotation is the point.** A bot that loads its client certificate from a vault must pick the
//!   newest *usable* version, skip versions outside `[nbf, exp]`, and reload after Entra refuses
//!   the old certificate. So every certificate keeps all its versions, `created` is strictly
//!   increasing per certificate (two versions made in one second still sort in creation order),
//!   versions can be disabled, and [`Sandbox::set_app_certificates`](crate::Sandbox::set_app_certificates)
//!   plays the Entra side of a rotation.
//! - **Real Key Vault's shapes and codes**, so a client tested here works against Azure: the
//!   `CertificateBundle` / `SecretBundle` JSON, the 401 challenge that names the authority and the
//!   resource, `BadParameter` for the api-version, `ForbiddenByRbac`, `SecretDisabled`,
//!   `CertificateNotFound` / `SecretNotFound`, paging with `nextLink`.
//! - **Only tokens this sandbox issued** (Entra client credentials or a managed identity endpoint)
//!   for `https://vault.azure.net` open it, optionally narrowed to an access list of identities.
//! - **Private keys stay in the vault's answers.** The request log, `tracing` and the console see
//!   paths, statuses and thumbprints, never a secret's value; the control endpoint answers
//!   thumbprints only.

pub(crate) mod control;
pub(crate) mod handle;
pub(crate) mod rest;
pub(crate) mod store;
pub(crate) mod vault;
