//! App Service and Azure Functions.

use botauth_core::config::ManagedIdentityId;
use botauth_core::{Error, Result};

use crate::ids::{IdParams, id_param};
use crate::source::{Endpoint, ManagedIdentitySource};
use crate::transport::Request;

/// The api-version App Service is called with.
pub(crate) const API_VERSION: &str = "2019-08-01";

const IDS: IdParams = IdParams {
    client_id: Some("client_id"),
    object_id: Some("object_id"),
    resource_id: Some("mi_res_id"),
};

/// `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=R[&client_id|object_id|mi_res_id]`,
/// `X-IDENTITY-HEADER: $IDENTITY_HEADER`.
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
        if let Some((name, value)) = id_param(ManagedIdentitySource::AppService, &IDS, id)? {
            q.append_pair(name, &value);
        }
    }
    let secret = endpoint
        .secret
        .clone()
        .ok_or_else(|| Error::config("IDENTITY_HEADER", "is required by App Service"))?;
    Ok(Request::get(url).header("X-IDENTITY-HEADER", secret))
}

/// Validates the id at build time.
pub(crate) fn check_id(id: &ManagedIdentityId) -> Result<()> {
    id_param(ManagedIdentitySource::AppService, &IDS, id).map(|_| ())
}
