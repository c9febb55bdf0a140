//! The Azure Instance Metadata Service (VMs, scale sets, AKS nodes).

use crate::request::{Header, IdParams, Spec};
use crate::source::ManagedIdentitySource;

/// `GET {endpoint}?api-version=2018-02-01&resource=R[&client_id|object_id|msi_res_id]`, `Metadata: true`.
pub(crate) const SPEC: Spec = Spec {
    source: ManagedIdentitySource::Imds,
    api_version: Some("2018-02-01"),
    ids: IdParams {
        client_id: Some("client_id"),
        object_id: Some("object_id"),
        resource_id: Some("msi_res_id"),
    },
    header: Header::Metadata,
};
