//! What differs between the managed identity endpoints, one row per source, as the client states
//! the same facts in its `Spec` table (`botauth-managed-identity`'s `request.rs`): where the
//! endpoint is, its api-version, the header that proves the caller is on the host, how a request
//! names a user-assigned identity, and how the answer is shaped.

use crate::log::Route;

/// How one managed identity source is served.
pub(crate) struct Spec {
    /// The route its requests are logged and faulted under.
    pub(crate) route: Route,
    /// Its path below the sandbox's URL.
    pub(crate) path: &'static str,
    /// Where it listens.
    pub(crate) listener: Listener,
    /// The `api-version` it insists on; `None` for a source that takes none (Cloud Shell).
    pub(crate) api_version: Option<&'static str>,
    pub(crate) header: Header,
    pub(crate) ids: IdNames,
    pub(crate) shape: Shape,
}

/// Which of the sandbox's listeners serves a source.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The main port, plain http, as the endpoint is in Azure.
    Http,
    /// The Service Fabric TLS listener: https only, with a pinned self-signed certificate.
    ServiceFabricTls,
}

/// The header that proves a request comes from the host itself.
#[derive(Clone, Copy)]
pub(crate) enum Header {
    /// `Metadata: true`, else 400.
    Metadata,
    /// The endpoints' secret (`IDENTITY_HEADER`, `MSI_SECRET`) under `name`, else 401 in Entra's
    /// error shape.
    Secret(&'static str),
    /// Service Fabric's `secret` header, else 401 in Service Fabric's own error shape.
    ServiceFabricSecret,
}

/// Names of the query parameters that select a user-assigned identity by client id, object id
/// and resource id; `None` when the source cannot select one that way.
pub(crate) struct IdNames {
    pub(crate) client_id: Option<&'static str>,
    pub(crate) object_id: Option<&'static str>,
    pub(crate) resource_id: Option<&'static str>,
}

/// No user-assigned identities: the source serves the system-assigned one only (Arc, Cloud Shell).
const SYSTEM_ONLY: IdNames = IdNames {
    client_id: None,
    object_id: None,
    resource_id: None,
};

/// How an endpoint shapes its success body.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    /// Every value a string, `expires_on` epoch (IMDS, App Service, Arc).
    Strings,
    /// Numbers (Cloud Shell, Service Fabric).
    Numbers,
    /// `expires_on` as `MM/dd/yyyy HH:mm:ss +00:00` and no `expires_in` (Azure ML's 2017 API).
    OldDate,
}

/// One row per source.
pub(crate) static SPECS: [Spec; 6] = [
    Spec {
        route: Route::Imds,
        path: "/metadata/identity/oauth2/token",
        listener: Listener::Http,
        api_version: Some("2018-02-01"),
        header: Header::Metadata,
        ids: IdNames {
            client_id: Some("client_id"),
            object_id: Some("object_id"),
            resource_id: Some("msi_res_id"),
        },
        shape: Shape::Strings,
    },
    Spec {
        route: Route::AppService,
        path: "/appservice/msi/token",
        listener: Listener::Http,
        api_version: Some("2019-08-01"),
        header: Header::Secret("x-identity-header"),
        ids: IdNames {
            client_id: Some("client_id"),
            object_id: Some("object_id"),
            resource_id: Some("mi_res_id"),
        },
        shape: Shape::Strings,
    },
    Spec {
        route: Route::AzureArc,
        path: "/arc/metadata/identity/oauth2/token",
        listener: Listener::Http,
        api_version: Some("2020-06-01"),
        header: Header::Metadata,
        ids: SYSTEM_ONLY,
        shape: Shape::Strings,
    },
    Spec {
        route: Route::CloudShell,
        path: "/cloudshell/oauth2/token",
        listener: Listener::Http,
        api_version: None,
        header: Header::Metadata,
        ids: SYSTEM_ONLY,
        shape: Shape::Numbers,
    },
    Spec {
        route: Route::ServiceFabric,
        path: "/servicefabric/metadata/identity/oauth2/token",
        listener: Listener::ServiceFabricTls,
        api_version: Some("2019-07-01-preview"),
        header: Header::ServiceFabricSecret,
        ids: IdNames {
            client_id: Some("client_id"),
            object_id: None,
            resource_id: Some("mi_res_id"),
        },
        shape: Shape::Numbers,
    },
    Spec {
        route: Route::AzureMl,
        path: "/azureml/msi/token",
        listener: Listener::Http,
        api_version: Some("2017-09-01"),
        header: Header::Secret("secret"),
        ids: IdNames {
            client_id: Some("clientid"),
            object_id: None,
            resource_id: None,
        },
        shape: Shape::OldDate,
    },
];

/// The row of the source served on `route`, if it is a managed identity route.
pub(crate) fn spec(route: Route) -> Option<&'static Spec> {
    SPECS.iter().find(|spec| spec.route == route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_classified_as_its_route() {
        for row in &SPECS {
            assert_eq!(Route::classify(row.path), row.route, "{}", row.path);
            assert!(std::ptr::eq(spec(row.route).unwrap(), row));
        }
    }
}
