//! Azure Cloud Shell.

use botauth_core::Result;
use botauth_core::config::ManagedIdentityId;

use crate::ids::{IdParams, id_param};
use crate::source::{Endpoint, ManagedIdentitySource};
use crate::transport::{Method, Request};

const IDS: IdParams = IdParams {
    client_id: None,
    object_id: None,
    resource_id: None,
};

/// `POST $MSI_ENDPOINT` with the form `resource=R`, `Metadata: true`.
pub(crate) fn request(
    endpoint: &Endpoint,
    resource: &str,
    id: &ManagedIdentityId,
) -> Result<Request> {
    check_id(id)?;
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("resource", resource)
        .finish();
    let mut request = Request::get(endpoint.url.clone()).header("Metadata", "true");
    request.method = Method::Post;
    request.form = Some(form);
    Ok(request)
}

/// Cloud Shell has the signed-in user's identity only.
pub(crate) fn check_id(id: &ManagedIdentityId) -> Result<()> {
    id_param(ManagedIdentitySource::CloudShell, &IDS, id).map(|_| ())
}
