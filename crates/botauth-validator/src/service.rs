//! The tower [`Service`] behind [`BotAuthLayer`](crate::BotAuthLayer).

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;
use tower_service::Service;
use tracing::Instrument as _;

use crate::activity::VerifiedActivity;
use crate::error::{Error, Repr};
use crate::future::ResponseFuture;
use crate::validator::{ActivityInfo, Validator};
use crate::verified_cache::VerifiedToken;

/// Fixed bodies: the client learns the status, never the reason (which goes to `tracing`).
pub(crate) const UNAUTHORIZED_BODY: &str =
    r#"{"error":"unauthorized","message":"the request is not authenticated"}"#;
pub(crate) const UNAVAILABLE_BODY: &str = r#"{"error":"service_unavailable","message":"authentication is temporarily unavailable; retry later"}"#;
pub(crate) const TOO_LARGE_BODY: &str =
    r#"{"error":"payload_too_large","message":"the activity is too large"}"#;
pub(crate) const BAD_REQUEST_BODY: &str =
    r#"{"error":"bad_request","message":"the body is not a JSON activity"}"#;
pub(crate) const TIMEOUT_BODY: &str =
    r#"{"error":"request_timeout","message":"the activity was not received in time"}"#;

/// How much body the layer reads, and for how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    pub(crate) max_bytes: usize,
    pub(crate) timeout: Duration,
}

/// Validates requests, then calls the inner service. See [`BotAuthLayer`](crate::BotAuthLayer).
#[derive(Debug, Clone)]
pub struct BotAuthService<S> {
    inner: S,
    validator: Validator,
    body: BodyLimits,
}

impl<S> BotAuthService<S> {
    pub(crate) fn new(inner: S, validator: Validator, body: BodyLimits) -> Self {
        BotAuthService {
            inner,
            validator,
            body,
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
    // The rest of a late body may still be on its way: this connection carries nothing more
    // (RFC 9110 §15.5.9 asks for `close` with a 408).
    if status == StatusCode::REQUEST_TIMEOUT {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
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

/// Authenticates a request from its headers alone (docs/protocol.md §6 rule 1): one
/// `Authorization` header, no longer than the token limit allows, visible ASCII, then the token
/// itself. The value is borrowed, never copied, and its length is judged before any byte of it
/// is scanned.
/// [`authenticate`], inside `span` when there is one.
async fn authenticate_in(
    span: Option<&tracing::Span>,
    validator: &Validator,
    headers: &http::HeaderMap,
) -> Result<VerifiedToken, Error> {
    match span {
        Some(span) => {
            authenticate(validator, headers)
                .instrument(span.clone())
                .await
        }
        None => authenticate(validator, headers).await,
    }
}

async fn authenticate(
    validator: &Validator,
    headers: &http::HeaderMap,
) -> Result<VerifiedToken, Error> {
    // Bound first: a `match` around the await would keep the `Result` in the future.
    let value = match authorization(validator, headers) {
        Ok(value) => value,
        // Counted here; the validator counts its own refusals.
        Err(e) => return validator.counted(Err(e)),
    };
    validator.verify_header(Some(value)).await
}

/// The request's one `Authorization` header, within the size limit and visible ASCII.
fn authorization<'h>(
    validator: &Validator,
    headers: &'h http::HeaderMap,
) -> Result<&'h str, Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next().ok_or(Repr::MissingToken)?;
    if values.next().is_some() {
        return Err(Error::from(Repr::BadScheme));
    }
    let limit = validator.max_authorization_bytes();
    if value.len() > limit {
        return Err(Error::from(Repr::TooLarge {
            part: "Authorization header",
            limit,
        }));
    }
    visible_ascii(value)
        .ok_or_else(|| Error::malformed("the Authorization header is not visible ASCII"))
}

/// The value as text when every byte of it is visible ASCII or a tab, as
/// [`HeaderValue::to_str`] has it; in one pass with no early exit, which the compiler turns
/// into vector instructions (the byte-at-a-time loop with an early exit cannot be), over a value
/// whose length was bounded just before.
/// `f` inside `span`, when there is one.
fn in_span<R>(span: &Option<Box<tracing::Span>>, f: impl FnOnce() -> R) -> R {
    match span {
        Some(span) => span.in_scope(f),
        None => f(),
    }
}

fn visible_ascii(value: &HeaderValue) -> Option<&str> {
    let bytes = value.as_bytes();
    if has_invisible(bytes) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// Not inlined: inlined into its caller, the loop was left scalar.
#[inline(never)]
fn has_invisible(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |invisible, &b| {
        invisible | !((b' '..=b'~').contains(&b) | (b == b'\t'))
    })
}

/// Reads the body of an authenticated request, within the size and time limits; the error is
/// the response to send instead.
async fn read_body<B, R>(body: B, limits: BodyLimits) -> Result<Bytes, Response<R>>
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    R: From<Bytes>,
{
    let limit = limits.max_bytes;
    // A `Content-Length` over the limit is refused before a byte of the body is read.
    if body.size_hint().lower() > u64::try_from(limit).unwrap_or(u64::MAX) {
        tracing::info!(limit, "bot request refused: activity too large (413)");
        return Err(fixed(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_BODY));
    }
    let mut read = std::pin::pin!(Limited::new(body, limit).collect());
    // A small activity has usually arrived with the headers: one poll reads it, and no timer
    // is armed for it (arming one took a runtime handle, a clock reading and the timer wheel's
    // lock on every request). Only a body still on its way is waited for, within the timeout.
    let first = std::future::poll_fn(|cx| Poll::Ready(read.as_mut().poll(cx))).await;
    let outcome = match first {
        Poll::Ready(read) => Ok(read),
        // Boxed: the timer is large, and the common case above should not carry its room.
        Poll::Pending => Box::pin(tokio::time::timeout(limits.timeout, read)).await,
    };
    match outcome {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            tracing::info!(limit, "bot request refused: activity too large (413)");
            Err(fixed(StatusCode::PAYLOAD_TOO_LARGE, TOO_LARGE_BODY))
        }
        Ok(Err(_)) => {
            tracing::info!("bot request refused: the body could not be read (400)");
            Err(fixed(StatusCode::BAD_REQUEST, BAD_REQUEST_BODY))
        }
        Err(_elapsed) => {
            tracing::info!(
                timeout = ?limits.timeout,
                "bot request refused: the activity did not arrive within the body timeout (408)"
            );
            Err(fixed(StatusCode::REQUEST_TIMEOUT, TIMEOUT_BODY))
        }
    }
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
        let limits = self.body;
        ResponseFuture::new(async move {
            let (mut parts, body) = request.into_parts();
            // The token is judged from the headers before any body byte is read, and its
            // header is borrowed, not copied: a caller who cannot authenticate costs us its
            // headers (which the server has already bounded) and no more. Its body stays
            // unread, and the server closes the connection after the 401.
            // The validation's span (DEBUG; docs/observability.md): the token check, and the
            // activity's checks once the body is in. Reading the body is not in it.
            // Boxed (allocated only when a subscriber takes DEBUG spans): it lives across the
            // body's read, and every byte of this future counts (see the size test below).
            let span = crate::telemetry::validate_span().map(Box::new);
            // Matched in place, not bound: see `claims` below.
            let token = match authenticate_in(span.as_deref(), &validator, &parts.headers).await {
                Ok(token) => token,
                Err(e) => {
                    return Ok(in_span(&span, || {
                        crate::telemetry::outcome(None, Some(&e));
                        rejection(&e)
                    }));
                }
            };
            let bytes = match read_body(body, limits).await {
                Ok(bytes) => bytes,
                Err(response) => return Ok(response),
            };
            let activity = match crate::json::activity_object(&bytes) {
                Some(members) => Value::Object(members),
                None => {
                    tracing::info!(
                        "bot request refused: the body is not a JSON object with each member once (400)"
                    );
                    return Ok(fixed(StatusCode::BAD_REQUEST, BAD_REQUEST_BODY));
                }
            };
            // Absent fields become "" so that they match no claim: the layer always checks.
            // Matched in place: a named `Result` would keep its room in the future (through
            // the handler's await below) even after it was moved out.
            let claims = match in_span(&span, || {
                let result =
                    validator.check_activity(&token, ActivityInfo::from_activity(&activity));
                crate::validator::record_outcome(&result);
                result
            }) {
                Ok(claims) => claims,
                Err(e) => return Ok(in_span(&span, || rejection(&e))),
            };
            // Not kept while the handler runs: its spans are the application's.
            drop(span);
            parts
                .extensions
                .insert(VerifiedActivity::new(claims, activity));
            inner
                .call(Request::from_parts(parts, ReqBody::from(bytes)))
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layer's future is boxed once per request: past 1,032 bytes (the largest size glibc's
    /// per-thread cache serves), its allocator consolidated its free lists on every request (3 %
    /// of a request, measured in issue 14). A `Result` bound to a name and held over an await
    /// pushed it over once; a span held by value took 40 of the 48 bytes left.
    #[test]
    fn the_layer_future_stays_under_a_kibibyte() {
        use http_body_util::Full;
        let validator = Validator::builder("app")
            .profile(crate::BotServiceProfile::public())
            .build()
            .unwrap();
        let inner = tower::service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::new())))
        });
        let mut service = BotAuthService::new(
            inner,
            validator,
            BodyLimits {
                max_bytes: 1024,
                timeout: Duration::from_secs(1),
            },
        );
        let _future = service.call(Request::new(Full::new(Bytes::new())));
        let size = crate::future::BUILT.with(std::cell::Cell::get);
        assert!(size > 0 && size <= 1000, "{size}");
    }

    #[test]
    fn visible_ascii_is_to_str() {
        for b in 0..=u8::MAX {
            for value in [
                vec![b],
                vec![b'a', b, b'z'],
                [b'x'; 100].iter().chain([&b]).copied().collect(),
            ] {
                if let Ok(value) = HeaderValue::from_bytes(&value) {
                    assert_eq!(visible_ascii(&value), value.to_str().ok(), "{b}");
                }
            }
        }
    }
}
