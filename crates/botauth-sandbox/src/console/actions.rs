//! What the console does: send the bot an activity as the Bot Service would, and apply a fault
//! with one click. Each fault is a row of [`FAULTS`](super::command::FAULTS); each reuses the sandbox's own fault
//! injection or key handling, so the console shows nothing a test could not also do.

use std::io;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use super::command::{ChatTarget, Command, ConsoleFault, hello};
use super::event::EventKind;
use super::redact::Decoded;
use crate::botservice::keys::ChannelTokenClaims;
use crate::delivery::Delivery;
use crate::faults::Fault;
use crate::log::Route;
use crate::{DEMO_USER_ID, Sandbox};

/// The most of a bot's answer body the feed carries.
const BODY_EXCERPT: usize = 2000;

/// How long "key endpoint down" lasts.
const KEYS_DOWN_FOR: Duration = Duration::from_secs(60);

/// The `aud` of the wrong-audience forgery: another bot's app id.
const OTHER_BOT: &str = "99999999-0000-4000-8000-00000000f04e";

/// The `serviceurl` of the wrong-service-URL forgery: a real Teams service URL, not the one the
/// activity names (docs/protocol.md §6 rule 6).
const OTHER_SERVICE_URL: &str = "https://smba.trafficmanager.net/teams/";

/// The console of a sandbox, returned by [`Sandbox::open_console`]: it carries out what the page
/// asks for. Run [`Console::run`] on a task that holds the sandbox (the page's buttons do nothing
/// until it runs); [`Console::say`] sends a message from elsewhere, e.g. a terminal.
#[derive(Debug)]
pub struct Console {
    target: Option<ChatTarget>,
    commands: Mutex<mpsc::UnboundedReceiver<Command>>,
}

impl Sandbox {
    /// Turns on the web console at [`Sandbox::console_url`], chatting with `target` (without
    /// one, the page only inspects what bots do). Opening it again replaces the earlier
    /// [`Console`], whose [`Console::run`] then returns.
    ///
    /// The console reports token requests, Bot Connector calls and key fetches from now on; it
    /// never shows a client secret, a private key or a token's signature.
    pub fn open_console(&self, target: Option<ChatTarget>) -> Console {
        let (tx, rx) = mpsc::unbounded_channel();
        self.shared.console.open(tx, &hello(target.as_ref()));
        Console {
            target,
            commands: Mutex::new(rx),
        }
    }

    /// `http://127.0.0.1:PORT/console`: the web console (plain http also with
    /// [`SandboxBuilder::tls`](crate::SandboxBuilder::tls), so a browser need not trust the local CA).
    pub fn console_url(&self) -> String {
        format!("{}/console", self.shared.http_url)
    }
}

impl Console {
    /// Carries out the page's actions until the console is reopened; abort its task to stop it
    /// sooner (the task holds the sandbox, so the sandbox cannot stop under it).
    pub async fn run(&self, sandbox: &Sandbox) {
        let mut commands = self.commands.lock().await;
        while let Some(command) = commands.recv().await {
            match command {
                Command::Say(text) => {
                    let _ = self.say(sandbox, &text).await;
                }
                Command::Join => {
                    let _ = self.join(sandbox).await;
                }
                Command::Fault(fault) => self.apply(sandbox, fault).await,
            }
        }
    }

    /// Sends `text` to the bot as a Teams message with a genuine channel token, reporting it in
    /// the console. Errors as [`Sandbox::deliver_activity`], or `NotConnected` without a bot.
    pub async fn say(&self, sandbox: &Sandbox, text: &str) -> io::Result<Delivery> {
        let target = self.target(sandbox)?;
        let activity = sandbox.channel_activity(&target.app_id, text);
        let token = sandbox.channel_token(&target.app_id, &activity);
        deliver(sandbox, target, &activity, Some(&token), None).await
    }

    /// Sends a `conversationUpdate` adding the user and the bot, as Teams does when the bot is
    /// installed in a chat.
    pub(crate) async fn join(&self, sandbox: &Sandbox) -> io::Result<Delivery> {
        let target = self.target(sandbox)?;
        let mut activity = sandbox.channel_activity(&target.app_id, "");
        if let Value::Object(map) = &mut activity {
            map.remove("text");
            map.remove("textFormat");
            map.insert("type".into(), json!("conversationUpdate"));
            let bot = map.get("recipient").cloned().unwrap_or(Value::Null);
            map.insert(
                "membersAdded".into(),
                json!([{ "id": DEMO_USER_ID, "name": "Sandbox User" }, bot]),
            );
        }
        let token = sandbox.channel_token(&target.app_id, &activity);
        deliver(sandbox, target, &activity, Some(&token), None).await
    }

    /// Applies `fault` and reports it in the console.
    pub(crate) async fn apply(&self, sandbox: &Sandbox, fault: ConsoleFault) {
        let shared = &sandbox.shared;
        let spec = fault.spec();
        let report = |detail: String| {
            shared.console.publish(
                &shared.secrets(),
                &EventKind::Fault {
                    fault: spec.id,
                    label: spec.label,
                    detail,
                },
            );
        };
        match fault {
            ConsoleFault::KeyEndpointDown => {
                for route in [Route::BotServiceMetadata, Route::BotServiceJwks] {
                    sandbox.inject(
                        route,
                        Fault::StatusFor {
                            status: 503,
                            duration: KEYS_DOWN_FOR,
                        },
                    );
                }
                report(format!(
                    "the next request opens a {}-second 503 outage",
                    KEYS_DOWN_FOR.as_secs()
                ));
            }
            ConsoleFault::TokenThrottled => {
                sandbox.inject(
                    Route::Token,
                    Fault::Status {
                        status: 429,
                        body: None,
                        retry_after: Some("2".into()),
                    },
                );
                report("queued for the next token request".into());
            }
            ConsoleFault::TokenUnavailable => {
                sandbox.inject(Route::Token, Fault::status(503));
                report("queued for the next token request".into());
            }
            ConsoleFault::RotateSigningKey => {
                let old = sandbox.bot_service_kid();
                let new = sandbox.rotate_bot_service_key();
                report(format!("signing key {old} → {new} (both published)"));
            }
            ConsoleFault::ExpireToken => {
                let count = shared.console.expire_issued();
                report(format!(
                    "{count} issued token(s) now refused by the Bot Connector as expired"
                ));
            }
            ConsoleFault::Clear => {
                sandbox.clear_faults();
                shared.lock().mi.outages.clear();
                shared.console.unexpire();
                report("no faults queued".into());
            }
            ConsoleFault::ForgedAudience | ConsoleFault::ForgedServiceUrl => {
                let Ok(target) = self.target(sandbox) else {
                    return;
                };
                let activity = sandbox.channel_activity(&target.app_id, "a forged activity");
                let (claims, what) = if fault == ConsoleFault::ForgedAudience {
                    (
                        ChannelTokenClaims::new(OTHER_BOT, sandbox.connector_url()),
                        "aud is another bot's app id",
                    )
                } else {
                    (
                        ChannelTokenClaims::new(&target.app_id, OTHER_SERVICE_URL),
                        "serviceurl is not the activity's serviceUrl",
                    )
                };
                report(what.into());
                let token = sandbox.mint_channel_token(claims);
                let _ = deliver(sandbox, target, &activity, Some(&token), Some(what)).await;
            }
        }
    }

    fn target(&self, sandbox: &Sandbox) -> io::Result<&ChatTarget> {
        self.target.as_ref().ok_or_else(|| {
            let shared = &sandbox.shared;
            shared.console.publish(
                &shared.secrets(),
                &EventKind::Note {
                    text: "no bot to chat with: start the sandbox with --bot URL".into(),
                },
            );
            io::Error::new(
                io::ErrorKind::NotConnected,
                "the console has no bot to chat with",
            )
        })
    }
}

/// Delivers `activity`, reporting it and the bot's answer as one turn.
async fn deliver(
    sandbox: &Sandbox,
    target: &ChatTarget,
    activity: &Value,
    token: Option<&str>,
    forged: Option<&'static str>,
) -> io::Result<Delivery> {
    let shared = &sandbox.shared;
    let hub = &shared.console;
    hub.next_turn();
    let decoded = token.map(Decoded::of);
    let endorsements = decoded
        .as_ref()
        .and_then(|d| d.header_str("kid"))
        .and_then(|kid| shared.lock().bot.endorsements(kid));
    hub.publish(
        &shared.secrets(),
        &EventKind::Inbound {
            activity: activity.clone(),
            token: decoded,
            endorsements,
            forged,
        },
    );
    let started = Instant::now();
    let result = sandbox
        .deliver_activity(&target.endpoint, activity, token)
        .await;
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let event = match &result {
        Ok(delivery) => EventKind::Delivery {
            status: Some(delivery.status),
            www_authenticate: delivery.www_authenticate.clone(),
            body: delivery.body.chars().take(BODY_EXCERPT).collect(),
            error: None,
            elapsed_ms,
        },
        Err(error) => EventKind::Delivery {
            status: None,
            www_authenticate: None,
            body: String::new(),
            error: Some(error.to_string()),
            elapsed_ms,
        },
    };
    hub.publish(&shared.secrets(), &event);
    result
}
