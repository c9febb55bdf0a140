//! The query parameters that select a user-assigned identity, which differ per source.

use botauth_core::config::ManagedIdentityId;
use botauth_core::{Error, Result};

use crate::source::ManagedIdentitySource;

/// Names of the parameters a source uses for a client id, an object id and a resource id; `None`
/// when the source cannot select an identity that way.
pub(crate) struct IdParams {
    pub(crate) client_id: Option<&'static str>,
    pub(crate) object_id: Option<&'static str>,
    pub(crate) resource_id: Option<&'static str>,
}

/// The `(name, value)` query parameter selecting `id`, or `None` for the system-assigned identity.
pub(crate) fn id_param(
    source: ManagedIdentitySource,
    params: &IdParams,
    id: &ManagedIdentityId,
) -> Result<Option<(&'static str, String)>> {
    let (name, value, what) = match id {
        ManagedIdentityId::System => return Ok(None),
        ManagedIdentityId::ClientId(v) => (params.client_id, v, "a client id"),
        ManagedIdentityId::ObjectId(v) => (params.object_id, v, "an object id"),
        ManagedIdentityId::ResourceId(v) => (params.resource_id, v, "a resource id"),
        _ => (None, &String::new(), "this kind of id"),
    };
    match name {
        Some(name) => Ok(Some((name, value.trim().to_owned()))),
        None => Err(unsupported(source, what)),
    }
}

pub(crate) fn unsupported(source: ManagedIdentitySource, what: &str) -> Error {
    let supported = match source {
        ManagedIdentitySource::AzureArc | ManagedIdentitySource::CloudShell => {
            "it supports only the system-assigned identity: configure the system-assigned identity \
             (MANAGED_IDENTITY_CLIENT_ID=system, AuthType SystemManagedIdentity)"
        }
        ManagedIdentitySource::ServiceFabric => {
            "it selects user-assigned identities by client id or resource id only"
        }
        ManagedIdentitySource::AzureMl => "it selects user-assigned identities by client id only",
        _ => "use a client id, an object id or a resource id",
    };
    Error::config(
        "managed_identity",
        format!(
            "{} cannot select a user-assigned identity by {what}: {supported}",
            source.product()
        ),
    )
}
