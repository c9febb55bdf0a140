//! What differs between the sources' token requests, and the one function that builds them: each
//! source file states its facts as a [`Spec`] and keeps only what is genuinely its own (Arc's
//! challenge, Cloud Shell's form, Service Fabric's pinned TLS).

use botauth_core::config::ManagedIdentityId;
use botauth_core::{Error, Result};

use crate::source::{Endpoint, ManagedIdentitySource};
use crate::transport::Request;
use crate::{app_service, arc, azure_ml, cloud_shell, imds, service_fabric};

/// How a source is asked for a token.
pub(crate) struct Spec {
    pub(crate) source: ManagedIdentitySource,
    /// The `api-version` query parameter; `None` for a source that takes none (Cloud Shell).
    pub(crate) api_version: Option<&'static str>,
    pub(crate) ids: IdParams,
    pub(crate) header: Header,
}

/// The header that proves the request comes from the host itself.
pub(crate) enum Header {
    /// `Metadata: true`: a server-side request forgery cannot set headers, so the endpoint refuses
    /// requests without it.
    Metadata,
    /// The endpoint's secret ([`Endpoint::secret`]) under `name`; `variable` is where it comes
    /// from, named in the error when it is missing.
    Secret {
        name: &'static str,
        variable: &'static str,
        required_by: &'static str,
    },
}

/// Names of the parameters a source uses for a client id, an object id and a resource id; `None`
/// when the source cannot select an identity that way.
pub(crate) struct IdParams {
    pub(crate) client_id: Option<&'static str>,
    pub(crate) object_id: Option<&'static str>,
    pub(crate) resource_id: Option<&'static str>,
}

/// The facts of `source`.
pub(crate) fn spec(source: ManagedIdentitySource) -> &'static Spec {
    match source {
        ManagedIdentitySource::Imds => &imds::SPEC,
        ManagedIdentitySource::AppService => &app_service::SPEC,
        ManagedIdentitySource::AzureArc => &arc::SPEC,
        ManagedIdentitySource::CloudShell => &cloud_shell::SPEC,
        ManagedIdentitySource::ServiceFabric => &service_fabric::SPEC,
        ManagedIdentitySource::AzureMl => &azure_ml::SPEC,
    }
}

impl Spec {
    /// Validates the id at build time: the source must be able to select it.
    pub(crate) fn check_id(&self, id: &ManagedIdentityId) -> Result<()> {
        id_param(self.source, &self.ids, id).map(|_| ())
    }

    /// `GET {endpoint}?api-version=V&resource=R[&<id parameter>=<id>]` with the source's header.
    pub(crate) fn get(
        &self,
        endpoint: &Endpoint,
        resource: &str,
        id: &ManagedIdentityId,
    ) -> Result<Request> {
        let id = id_param(self.source, &self.ids, id)?;
        let mut url = endpoint.url.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(version) = self.api_version {
                q.append_pair("api-version", version);
            }
            q.append_pair("resource", resource);
            if let Some((name, value)) = id {
                q.append_pair(name, &value);
            }
        }
        self.with_header(Request::get(url), endpoint)
    }

    /// Adds the source's [`Header`].
    pub(crate) fn with_header(&self, request: Request, endpoint: &Endpoint) -> Result<Request> {
        Ok(match self.header {
            Header::Metadata => request.header("Metadata", "true"),
            Header::Secret {
                name,
                variable,
                required_by,
            } => {
                let secret = endpoint.secret.clone().ok_or_else(|| {
                    Error::config(variable, format!("is required by {required_by}"))
                })?;
                request.header(name, secret)
            }
        })
    }
}

/// The `(name, value)` query parameter selecting `id`, or `None` for the system-assigned identity.
fn id_param(
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
        None => Err(unsupported(source, params, what)),
    }
}

fn unsupported(source: ManagedIdentitySource, params: &IdParams, what: &str) -> Error {
    let supported = match (
        params.client_id.is_some(),
        params.object_id.is_some(),
        params.resource_id.is_some(),
    ) {
        (false, false, false) => {
            "it supports only the system-assigned identity: configure the system-assigned identity \
             (MANAGED_IDENTITY_CLIENT_ID=system, AuthType SystemManagedIdentity)"
        }
        (true, false, true) => {
            "it selects user-assigned identities by client id or resource id only"
        }
        (true, false, false) => "it selects user-assigned identities by client id only",
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
