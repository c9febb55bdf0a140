//! App Service and Azure Functions.

use crate::request::{Header, IdParams, Spec};
use crate::source::{ManagedIdentitySource, env};

/// `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=R[&client_id|object_id|mi_res_id]`,
/// `X-IDENTITY-HEADER: $IDENTITY_HEADER`.
pub(crate) const SPEC: Spec = Spec {
    source: ManagedIdentitySource::AppService,
    api_version: Some("2019-08-01"),
    ids: IdParams {
        client_id: Some("client_id"),
        object_id: Some("object_id"),
        resource_id: Some("mi_res_id"),
    },
    header: Header::Secret {
        name: "X-IDENTITY-HEADER",
        variable: env::IDENTITY_HEADER,
        required_by: "App Service",
    },
};
