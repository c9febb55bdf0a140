//! Azure Cloud Shell.

use botauth_core::Result;
use botauth_core::config::ManagedIdentityId;

use crate::request::{Header, IdParams, Spec};
use crate::source::{Endpoint, ManagedIdentitySource};
use crate::transport::{Method, Request};

/// Cloud Shell has the signed-in user's identity only, and takes no api-version.
pub(crate) const SPEC: Spec = Spec {
    source: ManagedIdentitySource::CloudShell,
    api_version: None,
    ids: IdParams {
        client_id: None,
        object_id: None,
        resource_id: None,
    },
    header: Header::Metadata,
};

/// `POST $MSI_ENDPOINT` with the form `resource=R`, `Metadata: true`.
pub(crate) fn request(
    endpoint: &Endpoint,
    resource: &str,
    id: &ManagedIdentityId,
) -> Result<Request> {
    SPEC.check_id(id)?;
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("resource", resource)
        .finish();
    let mut request = SPEC.with_header(Request::get(endpoint.url.clone()), endpoint)?;
    request.method = Method::Post;
    request.form = Some(form);
    Ok(request)
}
