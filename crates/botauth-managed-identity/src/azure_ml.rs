//! Azure Machine Learning compute.

use crate::request::{Header, IdParams, Spec};
use crate::source::{ManagedIdentitySource, env};

/// `GET $MSI_ENDPOINT?api-version=2017-09-01&resource=R[&clientid]`, `secret: $MSI_SECRET`.
pub(crate) const SPEC: Spec = Spec {
    source: ManagedIdentitySource::AzureMl,
    api_version: Some("2017-09-01"),
    ids: IdParams {
        client_id: Some("clientid"),
        object_id: None,
        resource_id: None,
    },
    header: Header::Secret {
        name: "secret",
        variable: env::MSI_SECRET,
        required_by: "Azure ML",
    },
};
