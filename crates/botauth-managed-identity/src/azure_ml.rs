//! Azure Machine Learning compute.

use botauth_core::config::ManagedIdentityId;
use botauth_core::{Error, Result};

use crate::ids::{IdParams, id_param};
use crate::source::{Endpoint, ManagedIdentitySource};
use crate::transport::Request;

/// The api-version Azure ML is called with.
pub(crate) const API_VERSION: &str = "2017-09-01";

const IDS: IdParams = IdParams {
    client_id: Some("clientid"),
    object_id: None,
    resource_id: None,
};

/// `GET $MSI_ENDPOINT?api-version=2017-09-01&resource=R[&clientid]`, `secret: $MSI_SECRET`.
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
        if let Some((name, value)) = id_param(ManagedIdentitySource::AzureMl, &IDS, id)? {
            q.append_pair(name, &value);
        }
    }
    let secret = endpoint
        .secret
        .clone()
        .ok_or_else(|| Error::config("MSI_SECRET", "is required by Azure ML"))?;
    Ok(Request::get(url).header("secret", secret))
}

/// Validates the id at build time.
pub(crate) fn check_id(id: &ManagedIdentityId) -> Result<()> {
    id_param(ManagedIdentitySource::AzureMl, &IDS, id).map(|_| ())
}
