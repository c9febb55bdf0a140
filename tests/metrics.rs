//! The metrics botauth records (feature `metrics`, docs/observability.md), read back from a
//! recorder installed the way an application installs its exporter: the echo bot answers channel
//! messages over real HTTP (validations, the verified-token cache, a key fetch, a token request,
//! Connector sends), a forced refresh gives a refresh lead time, and a wrong secret an `AADSTS`
//! code.
//!
//! One test in this binary: the recorder is process-wide.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use botauth_e2e::{RunningBot, sandbox_auth_with_secret};
use botauth_sandbox::{DemoCredential, Sandbox};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

#[derive(Default)]
struct Count(AtomicU64);

impl CounterFn for Count {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Values(Mutex<Vec<f64>>);

impl HistogramFn for Values {
    fn record(&self, value: f64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value);
    }
}

/// Every counter and histogram, by `name{label=value,…}` (labels sorted).
#[derive(Default)]
struct Captured {
    counters: Mutex<BTreeMap<String, Arc<Count>>>,
    histograms: Mutex<BTreeMap<String, Arc<Values>>>,
}

fn name_of(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Captured {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        Counter::from_arc(Arc::clone(counters.entry(name_of(key)).or_default()))
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let mut histograms = self
            .histograms
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Histogram::from_arc(Arc::clone(histograms.entry(name_of(key)).or_default()))
    }
}

impl Captured {
    fn counter(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map_or(0, |c| c.0.load(Ordering::Relaxed))
    }

    fn values(&self, name: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map_or_else(Vec::new, |h| {
                h.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
            })
    }

    /// Every counter whose name starts with `prefix`, with its value (non-zero ones).
    fn counters(&self, prefix: &str) -> Vec<(String, u64)> {
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, c)| (name.clone(), c.0.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_way_flow_is_counted() {
    let captured: &'static Captured = Box::leak(Box::default());
    metrics::set_global_recorder(captured).expect("the only recorder of this binary");

    let sandbox = Sandbox::start().await.unwrap();
    // Built after the recorder is installed, as the docs ask.
    let env = sandbox.demo_environment(DemoCredential::Secret).unwrap();
    let bot = RunningBot::start(&env).await;

    // Four messages with one token: the sandbox, as Bot Service does, sends a bot the same
    // token with each activity while it is fresh. A token enters the verified-token cache on its
    // second verification, so the first two deliveries verify it and the last two are answered
    // from the cache (or a server thread's memo of it).
    let (first, token) = bot.message(&sandbox, "one");
    let (second, again) = bot.message(&sandbox, "two");
    assert_eq!(token, again, "the channel's token is reused");
    for activity in [&first, &second, &first, &second] {
        let delivery = bot.deliver(&sandbox, activity, Some(&token)).await;
        assert_eq!(delivery.status, 200, "{delivery:?}");
    }
    // No token, and a token for another bot: two refusals.
    assert_eq!(bot.deliver(&sandbox, &first, None).await.status, 401);
    let forged = sandbox.channel_token("99999999-0000-0000-0000-00000000f0f0", &first);
    assert_eq!(
        bot.deliver(&sandbox, &first, Some(&forged)).await.status,
        401
    );

    let v = "botauth.validations";
    assert_eq!(
        captured.counter(&format!("{v}{{outcome=accepted,reason=none}}")),
        4
    );
    assert_eq!(
        captured.counter(&format!("{v}{{outcome=rejected,reason=missing_token}}")),
        1
    );
    assert_eq!(
        captured.counter(&format!("{v}{{outcome=rejected,reason=audience}}")),
        1
    );
    assert_eq!(captured.counters(v).len(), 3, "{:?}", captured.counters(v));

    let lookups = "botauth.validation.cache.lookups";
    // Verified: the channel's token twice, the forged one once (refused before its signature).
    // The missing token never reached the cache.
    assert_eq!(captured.counter(&format!("{lookups}{{result=miss}}")), 3);
    assert_eq!(
        captured.counter(&format!("{lookups}{{result=hit}}"))
            + captured.counter(&format!("{lookups}{{result=memo}}")),
        2
    );

    assert_eq!(
        captured.counters("botauth.keys.fetches"),
        [(
            "botauth.keys.fetches{outcome=success,server.address=127.0.0.1}".to_owned(),
            1
        )]
    );

    // One token for the four replies.
    assert_eq!(
        captured.counters("botauth.token.requests"),
        [(
            "botauth.token.requests{aadsts=,credential=client_secret,error=,outcome=success}"
                .to_owned(),
            1
        )]
    );
    let ages = captured.values("botauth.token.age{credential=client_secret}");
    assert_eq!(ages.len(), 4, "one use per reply: {ages:?}");
    assert!(ages.iter().all(|&a| (0.0..60.0).contains(&a)), "{ages:?}");

    assert_eq!(
        captured.counters("botauth.connector.sends"),
        [(
            "botauth.connector.sends{http.response.status_code=200,server.address=127.0.0.1}"
                .to_owned(),
            4
        )]
    );
    let took = captured.values(
        "http.client.request.duration{http.request.method=POST,http.response.status_code=200,server.address=127.0.0.1}",
    );
    assert_eq!(took.len(), 4);
    assert!(took.iter().all(|&s| s > 0.0 && s < 30.0), "{took:?}");

    // A forced refresh of the cached token: it had about an hour left.
    let lead = "botauth.token.refresh.lead_time{credential=client_secret}";
    assert!(captured.values(lead).is_empty());
    let tokens = bot.auth.tokens();
    tokens
        .force_refresh(bot.auth.connector_request())
        .await
        .unwrap();
    let leads = captured.values(lead);
    assert_eq!(leads.len(), 1);
    assert!((3000.0..=3600.0).contains(&leads[0]), "{leads:?}");

    // A wrong secret: refused by the sandbox's Entra with AADSTS7000215, counted with its code.
    let wrong = sandbox_auth_with_secret(&sandbox, "wrong");
    assert!(wrong.connector_token().await.is_err());
    assert_eq!(
        captured.counter(
            "botauth.token.requests{aadsts=AADSTS7000215,credential=client_secret,error=rejected,outcome=failure}"
        ),
        1
    );
}
