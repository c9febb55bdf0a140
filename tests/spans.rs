//! The `tracing` spans botauth opens (docs/observability.md), read back by a subscriber layer
//! over the two-way flow: the echo bot validates channel messages (a key fetch inside the first
//! validation), takes a token and replies through the Connector; a forged token is refused; a
//! wrong secret is refused by Entra. Every field is checked for secrets.
//!
//! One test in this binary: the subscriber is process-wide.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use botauth_e2e::{RunningBot, assert_absent, jwt_and_parts, sandbox_auth_with_secret};
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DemoCredential, Sandbox};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// A closed (or still open) span: its name, its parent's name and its fields as text.
#[derive(Debug, Clone, Default)]
struct Seen {
    name: &'static str,
    parent: Option<&'static str>,
    fields: BTreeMap<&'static str, String>,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

impl Visit for Seen {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.fields.insert(field.name(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.fields.insert(field.name(), value.to_owned());
    }
}

/// Every span of the process, in the order they were opened.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Seen>>>);

/// Where a span's record is in [`Spans`].
struct Index(usize);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut seen = Seen {
            name: attrs.metadata().name(),
            parent: ctx.span(id).and_then(|s| s.parent()).map(|p| p.name()),
            ..Seen::default()
        };
        attrs.record(&mut seen);
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.push(seen);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Index(all.len() - 1));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(Index(i)) = span.extensions().get::<Index>() {
                values.record(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner)[*i]);
            }
        }
    }
}

impl Spans {
    fn named(&self, name: &str) -> Vec<Seen> {
        let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.iter().filter(|s| s.name == name).cloned().collect()
    }

    /// Every field value of every span, as one text.
    fn text(&self) -> String {
        let all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        all.iter()
            .flat_map(|s| s.fields.values().cloned())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_way_flow_is_traced() {
    let spans = Spans::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(spans.clone()))
        .expect("the only subscriber of this binary");

    let sandbox = Sandbox::start().await.unwrap();
    let env = sandbox.demo_environment(DemoCredential::Secret).unwrap();
    let bot = RunningBot::start(&env).await;
    let (first, token) = bot.message(&sandbox, "one");
    for _ in 0..3 {
        let delivery = bot.deliver(&sandbox, &first, Some(&token)).await;
        assert_eq!(delivery.status, 200, "{delivery:?}");
    }
    let forged = sandbox.channel_token("99999999-0000-0000-0000-00000000f0f0", &first);
    assert_eq!(
        bot.deliver(&sandbox, &first, Some(&forged)).await.status,
        401
    );

    // Validations: the token verified (twice: it enters the cache on its second verification),
    // then answered by the cache; the forged one refused for its audience.
    let validations = spans.named("botauth.validate");
    let summary: Vec<_> = validations
        .iter()
        .map(|s| {
            (
                s.field("outcome").unwrap_or("-"),
                s.field("source").unwrap_or("-"),
                s.field("profile").unwrap_or("-"),
                s.field("reason").unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(summary.len(), 4, "{summary:?}");
    assert_eq!(
        summary[..2],
        [("accepted", "verified", "bot_service", "none"); 2]
    );
    assert!(
        matches!(
            summary[2],
            ("accepted", "cache" | "memo", "bot_service", "none")
        ),
        "{summary:?}"
    );
    assert_eq!(summary[3], ("rejected", "verified", "-", "audience"));

    // The first validation fetched the keys, inside its span.
    let fetches = spans.named("botauth.keys.fetch");
    assert_eq!(fetches.len(), 1, "{fetches:?}");
    assert_eq!(fetches[0].parent, Some("botauth.validate"));
    assert_eq!(fetches[0].field("server.address"), Some("127.0.0.1"));
    assert_eq!(fetches[0].field("outcome"), Some("success"));
    assert!(fetches[0].field("keys").is_some_and(|n| n != "0"));

    // One token request for the three replies; the first reply waited for it, the others took
    // it from the cache.
    let acquired = spans.named("botauth.token.acquire");
    assert_eq!(acquired.len(), 1, "{acquired:?}");
    let a = &acquired[0];
    assert_eq!(a.field("credential"), Some("client_secret"));
    assert_eq!(a.field("outcome"), Some("ok"));
    assert_eq!(a.field("attempts"), Some("1"));
    assert_eq!(a.field("refresh"), Some("false"));
    assert!(
        a.field("key").is_some_and(|k| k.contains(DEMO_CLIENT_ID)),
        "{a:?}"
    );
    let gets = spans.named("botauth.token.get");
    let sources: Vec<_> = gets
        .iter()
        .map(|s| s.field("source").unwrap_or("-"))
        .collect();
    assert_eq!(sources, ["fetched", "cache", "cache"], "{gets:?}");
    assert!(gets.iter().all(|s| s.field("outcome") == Some("ok")));

    let sends = spans.named("botauth.connector.send");
    assert_eq!(sends.len(), 3, "{sends:?}");
    for s in &sends {
        assert_eq!(s.field("outcome"), Some("ok"), "{s:?}");
        assert_eq!(s.field("attempts"), Some("1"), "{s:?}");
        assert_eq!(s.field("http.response.status_code"), Some("200"), "{s:?}");
        assert_eq!(s.field("server.address"), Some("127.0.0.1"), "{s:?}");
        assert!(s.field("connection").is_some(), "{s:?}");
    }

    // A wrong secret: Entra's refusal and its code on the acquisition's span.
    let wrong = sandbox_auth_with_secret(&sandbox, "wrong-secret-value");
    assert!(wrong.connector_token().await.is_err());
    let failed = spans.named("botauth.token.acquire");
    let f = failed.last().unwrap();
    assert_eq!(f.field("outcome"), Some("error"), "{f:?}");
    assert_eq!(f.field("error"), Some("rejected"), "{f:?}");
    assert_eq!(f.field("aadsts"), Some("AADSTS7000215"), "{f:?}");

    // No secret in any field: the channel tokens, the bot's access token, the secrets.
    let access = bot.auth.connector_token().await.unwrap();
    let mut forbidden = jwt_and_parts(&token);
    forbidden.extend(jwt_and_parts(&forged));
    forbidden.extend(jwt_and_parts(access.token.expose_secret()));
    forbidden.push(DEMO_CLIENT_SECRET.to_owned());
    forbidden.push("wrong-secret-value".to_owned());
    assert_absent(&spans.text(), &forbidden);
}
