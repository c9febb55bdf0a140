//! The tower [`Service`] behind [`BotAuthLayer`](crate::BotAuthLayer).

use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use tower_service::Service;

use crate::activity::VerifiedActivity;
use crate::error::Error;
use crate::future::ResponseFuture;
use crate::validator::{ActivityInfo, Validator};

/// Fixed bodies: the client learns the status, never the reason (which goes to `tracing`).
pub(crate) const UNAUTHORIZED_BODY: &str =
    r#"{"error":"unauthorized","message":"the request is not authenticated"}"#;
pub(crate) const UNAVAILABLE_BODY: &str = r#"{"error":"service_unavailable","message":"authentication is temporarily unavailable; retry later"}"#;
pub(crate) const TOO_LARGE_BODY: &str =
    r#"{"error":"payload_too_large","message":"the activity is too large"}"#;
pub(crate) const BAD_REQUEST_BODY: &str =
    r#"{"error":"bad_request","message":"the body is not a JSON activity"}"#;

/// Validates requests, then calls the inner service. See [`BotAuthLayer`](crate::BotAuthLayer).
#[derive(Debug, Clone)]
pub struct BotAuthService<S> {
    inner: S,
    validator: Validator,
    max_body_bytes: usize,
}

impl<S> BotAuthService<S> {
    pub(crate) fn new(inner: S, validator: Validator, max_body_bytes: usize) -> Self {
        BotAuthService {
            inner,
            validator,
            max_body_bytes,
        }
    }
}

fn fixed<B: From<Bytes>>(status: StatusCode, body: &'static str) -> Response<B> {
    let mut response = Response::new(B::from(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// The response for a failed validation.
pub(crate) fn rejection<B: From<Bytes>>(error: &Error) -> Response<B> {
    if error.is_rejection() {
        tracing::info!(reason = %error.kind(), error = %error, "bot request rejected (401)");
        fixed(StatusCode::UNAUTHORIZED, UNAUTHORIZED_BODY)
    } else {
        tracing::warn!(reason = %error.kind(), error = %error, "bot request refused: signing keys unavailable (503)");
        fixed(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE_BODY)
    }
}

/// The single `Authorization` header as text.
fn authorization(headers: &http::HeaderMap) -> Result<&str, Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(Error::MissingToken)?;
    if values.next().is_some() {
        return Err(Error::BadScheme);
    }
    value
        .to_str()
        .map_err(|_| Error::malformed("the Authorization header is not visible ASCII"))
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for BotAuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: http_body::Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: From<Bytes> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The clone is not ready; the one `poll_ready` prepared is the one we call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let validator = self.validator.clone();
        let limit = self.max_body_bytes;
        ResponseFuture::new(async move {
            let (mut parts, body) = request.into_parts();
            // The header is judged before the body is read: an unauthenticated caller cannot
            // make us buffer anything.
            let token = match authorization(&parts.headers).and_then(crate::token::bearer) {
                Ok(token) => token.to_owned(),
                Err(e) => return Ok(rejection(&e)),
            };
            let bytes = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<LengthLimitError>() => {
                    tracing::info!(limit, "bot request refused: activity too large (413)");
                    return Ok(fixed(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_BODY));
                }
                Err(_) => {
                    tracing::info!("bot request refused: the body could not be read (400)");
                    return Ok(fixed(StatusCode::BAD_REQUEST, BAD_REQUEST_BODY));
                }
            };
            let activity = match crate::token::activity_object(&bytes) {
                Some(members) => Value::Object(members),
                None => {
                    tracing::info!(
                        "bot request refused: the body is not a JSON object with each member once (400)"
                    );
                    return Ok(fixed(StatusCode::BAD_REQUEST, BAD_REQUEST_BODY));
                }
            };
            // Absent fields become "" so that they match no claim: the layer always checks.
            let text = |name: &str| activity.get(name).and_then(Value::as_str).unwrap_or("");
            let info = ActivityInfo::new(text("serviceUrl"), text("channelId"));
            let claims = match validator.validate(&token, info).await {
                Ok(claims) => claims,
                Err(e) => return Ok(rejection(&e)),
            };
            parts
                .extensions
                .insert(VerifiedActivity::new(claims, activity));
            inner
                .call(Request::from_parts(parts, ReqBody::from(bytes)))
                .await
        })
    }
}
