//! What names the token endpoint: OpenID metadata (v2 and v1), the JWKS of the Entra signing key
//! and MSAL's instance discovery, each on the origin the client used.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use super::token::{Version, valid_tenant};
use crate::error::{EntraError, code, json_response};
use crate::origin::Origin;
use crate::state::{Shared, entra_metadata_url};

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`, naming endpoints on the origin the
/// client used (MSAL posts to the advertised `token_endpoint` and uses it as the `aud` of its
/// client assertions).
pub(crate) async fn metadata(
    origin: Origin,
    tenant: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    openid_configuration(Version::V2, &origin, tenant, &headers)
}

/// `GET /{tenant}/.well-known/openid-configuration`: the v1 document.
pub(crate) async fn metadata_v1(
    origin: Origin,
    tenant: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    openid_configuration(Version::V1, &origin, tenant, &headers)
}

fn openid_configuration(
    version: Version,
    Origin(base): &Origin,
    tenant: Result<Path<String>, PathRejection>,
    headers: &HeaderMap,
) -> Response {
    let tenant = tenant.ok().map(|Path(t)| t);
    let tenant = match valid_tenant(tenant.as_deref()) {
        Ok(tenant) => tenant,
        Err(error) => return error.into_response(headers),
    };
    let (issuer, segment, keys) = match version {
        Version::V2 => (
            format!("{base}/{tenant}/v2.0"),
            "oauth2/v2.0",
            "discovery/v2.0/keys",
        ),
        Version::V1 => (
            format!("https://sts.windows.net/{tenant}/"),
            "oauth2",
            "discovery/keys",
        ),
    };
    let body = json!({
        "issuer": issuer,
        "token_endpoint": format!("{base}{}", version.token_path(tenant)),
        "authorization_endpoint": format!("{base}/{tenant}/{segment}/authorize"),
        "device_authorization_endpoint": format!("{base}/{tenant}/{segment}/devicecode"),
        "end_session_endpoint": format!("{base}/{tenant}/{segment}/logout"),
        "jwks_uri": format!("{base}/{tenant}/{keys}"),
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"],
        "tenant_region_scope": "WW",
        "cloud_instance_name": "sandbox.localhost",
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=…`: Entra's instance
/// discovery, which MSAL asks before it trusts an authority host. The sandbox vouches only for
/// itself: the answer's metadata names the host the client used, whatever the query names, and
/// the tenant comes from the `authorization_endpoint`'s path when it is a valid tenant.
pub(crate) async fn instance_discovery(
    origin: Origin,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let tenant = params
        .get("authorization_endpoint")
        .and_then(|endpoint| url::Url::parse(endpoint).ok())
        .and_then(|url| {
            url.path_segments()
                .and_then(|mut segments| segments.next().map(str::to_owned))
        })
        .filter(|t| valid_tenant(Some(t)).is_ok())
        .unwrap_or_else(|| "common".to_owned());
    if !params.contains_key("api-version") {
        return EntraError::invalid_request(
            code::MISSING_PARAMETER,
            "The request must contain the following parameter: 'api-version'.",
        )
        .into_response(&headers);
    }
    let host = origin
        .0
        .split_once("://")
        .map_or(origin.0.as_str(), |(_, host)| host);
    let body = json!({
        "tenant_discovery_endpoint": entra_metadata_url(&origin.0, &tenant),
        "api-version": "1.1",
        "metadata": [{
            "preferred_network": host,
            "preferred_cache": host,
            "aliases": [host],
        }],
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /{tenant}/discovery/v2.0/keys` (and the v1 `/{tenant}/discovery/keys`).
pub(crate) async fn jwks(
    State(shared): State<Arc<Shared>>,
    tenant: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Response {
    let tenant = tenant.ok().map(|Path(t)| t);
    if let Err(error) = valid_tenant(tenant.as_deref()) {
        return error.into_response(&headers);
    }
    json_response(StatusCode::OK, &json!({ "keys": [shared.entra_key.jwk()] }))
}
