//! The Azure Instance Metadata Service (VMs, scale sets, AKS nodes).

use botauth_core::Result;
use botauth_core::config::ManagedIdentityId;

use crate::ids::{IdParams, id_param};
use crate::source::{Endpoint, ManagedIdentitySource};
use crate::transport::Request;

/// The api-version IMDS is called with.
pub(crate) const API_VERSION: &str = "2018-02-01";

const IDS: IdParams = IdParams {
    client_id: Some("client_id"),
    object_id: Some("object_id"),
    resource_id: Some("msi_res_id"),
};

/// `GET {endpoint}?api-version=2018-02-01&resource=R[&client_id|object_id|msi_res_id]`, `Metadata: true`.
pub(crate) fn request(
    endpoint: &Endpoint,
    resource: &str,
    id: &ManagedIdentityId,
) -> Result<Request> {
    let mut url = endpoint.url.clone();
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("api-version", API_VERSION)
            .append_pair("resource", resource);
        if let Some((name, value)) = id_param(ManagedIdentitySource::Imds, &IDS, id)? {
            q.append_pair(name, &value);
        }
    }
    Ok(Request::get(url).header("Metadata", "true"))
}

/// Validates the id at build time.
pub(crate) fn check_id(id: &ManagedIdentityId) -> Result<()> {
    id_param(ManagedIdentitySource::Imds, &IDS, id).map(|_| ())
}
