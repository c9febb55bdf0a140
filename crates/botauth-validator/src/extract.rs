//! axum extractors (feature `axum`): handlers behind [`BotAuthLayer`](crate::BotAuthLayer) take
//! the verified claims and activity as arguments.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::activity::VerifiedActivity;
use crate::claims::BotClaims;

/// The extractor's rejection: the route is not behind a [`BotAuthLayer`](crate::BotAuthLayer).
/// That is a wiring mistake, so it answers **500** (never lets the handler run unauthenticated).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct MissingBotAuthLayer;

impl std::fmt::Display for MissingBotAuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the route is not behind botauth's BotAuthLayer: add `.layer(BotAuthLayer::new(validator))`")
    }
}

impl std::error::Error for MissingBotAuthLayer {}

impl IntoResponse for MissingBotAuthLayer {
    fn into_response(self) -> Response {
        tracing::error!("{self}");
        let mut response = (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"internal_error","message":"authentication is not configured"}"#,
        )
            .into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

impl<S: Send + Sync> FromRequestParts<S> for VerifiedActivity {
    type Rejection = MissingBotAuthLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedActivity>()
            .cloned()
            .ok_or(MissingBotAuthLayer)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BotClaims {
    type Rejection = MissingBotAuthLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<VerifiedActivity>()
            .map(|v| v.claims().clone())
            .ok_or(MissingBotAuthLayer)
    }
}
