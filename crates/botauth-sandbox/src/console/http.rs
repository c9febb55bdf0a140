//! The console's HTTP side: the page and its assets, the event stream (server-sent events) and
//! the action endpoint, all under `/console` on the sandbox's own port.
//!
//! The console drives the sandbox, so a page from elsewhere must not: every route answers only
//! for a loopback `Host` (a DNS-rebinding page has its own host name there), and actions must be
//! `application/json` (which a cross-site form cannot send without a CORS preflight, and the
//! sandbox answers none) from the console's own origin when the browser names one.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body::Frame;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::command::{Command, ConsoleFault};
use crate::state::Shared;

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/console.js");
const STYLE: &str = include_str!("assets/console.css");

/// How often an idle event stream sends a comment, so proxies and browsers keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Scripts, styles and connections from the sandbox only: nothing inline, nothing remote.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The console's routes (answering 404 until [`Sandbox::open_console`](crate::Sandbox::open_console)).
pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/console", get(page))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .route("/console/events", get(events))
        .route("/console/actions", post(action))
}

/// Why a console request is refused, or `None`.
fn refuse(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    if !shared.console.enabled() {
        return Some(plain(
            StatusCode::NOT_FOUND,
            "sandbox: the console is off (botauth sandbox --console).",
        ));
    }
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !is_loopback_host(host) {
        return Some(plain(
            StatusCode::FORBIDDEN,
            "sandbox: the console answers only at 127.0.0.1, [::1] or localhost.",
        ));
    }
    None
}

/// `127.0.0.1`, `localhost` or `[::1]`, with an optional port.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or("", |(name, _)| name),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "::1"
    )
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, [(CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    let mut response = (StatusCode::OK, text).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn page(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    refuse(&shared, &headers).unwrap_or_else(|| asset("text/html; charset=utf-8", PAGE))
}

async fn script(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    refuse(&shared, &headers).unwrap_or_else(|| asset("text/javascript; charset=utf-8", SCRIPT))
}

async fn style(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    refuse(&shared, &headers).unwrap_or_else(|| asset("text/css; charset=utf-8", STYLE))
}

/// `GET /console/events`: a `hello` event, the history after `Last-Event-ID`, then live events.
async fn events(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(refusal) = refuse(&shared, &headers) {
        return refusal;
    }
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let (backlog, live) = shared.console.subscribe(last_id);
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let body = EventStream {
        backlog: Some(Bytes::from(backlog)),
        live,
        keep_alive,
    };
    let mut response = Response::new(Body::new(body));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The body of an event stream: the backlog, then each event as it is published.
struct EventStream {
    backlog: Option<Bytes>,
    live: mpsc::Receiver<Arc<str>>,
    keep_alive: tokio::time::Interval,
}

impl HttpBody for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(backlog) = self.backlog.take() {
            return Poll::Ready(Some(Ok(Frame::data(backlog))));
        }
        match self.live.poll_recv(cx) {
            Poll::Ready(Some(line)) => {
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(line.as_bytes().to_vec())))))
            }
            // The console dropped this stream (it fell behind): end it, the page reconnects.
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.keep_alive.poll_tick(cx) {
                Poll::Ready(_) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                    b": keep-alive\n\n",
                ))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum Action {
    Say { text: String },
    Join,
    Fault { fault: String },
}

/// `POST /console/actions` with `{"action":"say","text":…}`, `{"action":"join"}` or
/// `{"action":"fault","fault":"token-503"}`: 202 once handed to the console's runner (the
/// outcome arrives as events), 400 for anything else, 503 when no runner is running.
async fn action(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = refuse(&shared, &headers) {
        return refusal;
    }
    if !is_json(&headers) {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "sandbox: console actions are application/json.",
        );
    }
    if let Some(origin) = headers.get(ORIGIN) {
        let host = headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let same = origin
            .to_str()
            .ok()
            .is_some_and(|o| o == format!("http://{host}") || o == format!("https://{host}"));
        if !same {
            return plain(
                StatusCode::FORBIDDEN,
                "sandbox: console actions come from the console's own page.",
            );
        }
    }
    let command = match serde_json::from_slice::<Action>(&body) {
        Ok(Action::Say { text }) if !text.trim().is_empty() && text.len() <= 4096 => {
            Command::Say(text.trim().to_owned())
        }
        Ok(Action::Join) => Command::Join,
        Ok(Action::Fault { fault }) => match ConsoleFault::from_id(&fault) {
            Some(fault) => Command::Fault(fault),
            None => return plain(StatusCode::BAD_REQUEST, "sandbox: no such console fault."),
        },
        _ => return plain(StatusCode::BAD_REQUEST, "sandbox: not a console action."),
    };
    if shared.console.command(command) {
        plain(StatusCode::ACCEPTED, "accepted")
    } else {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "sandbox: the console is not running (Console::run).",
        )
    }
}

/// Whether the request says its body is JSON (`application/json`, any parameters): the
/// sandbox's control endpoints accept nothing else, so a cross-site form post cannot reach them.
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_loopback_hosts() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost:1",
            "LOCALHOST",
            "[::1]:9",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "127.0.0.1.evil.example:80",
            "[::2]:1",
            "localhost.evil:1",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
