//! [`KeyVaultCertificateSource`]: client assertions signed with a certificate read from Key Vault,
//! and the rotation rules of docs/protocol.md §11.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use botauth_certificate::{CertificateAssertion, CertificateSource};
use botauth_core::config::AssertionAlgorithm;
use botauth_core::{AssertionRequest, ClientAssertionSource, Clock, EntraError, Result, Secret};

use crate::error::{KeyVaultError, KeyVaultErrorKind as Kind};
use crate::vault::{CertificateInfo, Vault, split_pem};

/// The first wait after a failed rotation check; it doubles on each failure up to the interval.
const FIRST_BACKOFF: Duration = Duration::from_secs(30);

/// A rejection within this long after the signing version changed may have been signed with the
/// version before (longer than any token request takes), so it is retried once.
const RECENT_SWITCH: Duration = Duration::from_secs(120);

/// A loaded certificate version, ready to sign.
struct Loaded {
    version: String,
    thumbprint: String,
    not_before: Option<SystemTime>,
    assertion: CertificateAssertion,
}

#[derive(Default)]
struct State {
    current: Option<Arc<Loaded>>,
    /// A newer version whose validity has not started: it replaces `current` once it has.
    pending: Option<Arc<Loaded>>,
    next_check: Option<SystemTime>,
    failures: u32,
    /// When the signing version last changed (a rotation or a pending version taking over).
    switched_at: Option<SystemTime>,
}

/// What a check of the vault found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotationOutcome {
    /// The version in use is still the newest enabled one.
    Unchanged {
        /// The version in use.
        version: String,
    },
    /// A newer version was loaded and is now used for signing.
    Switched {
        /// The version used before.
        from: String,
        /// The version used now.
        to: String,
        /// Its SHA-1 thumbprint (upper-case hex).
        thumbprint: String,
    },
    /// A newer version was loaded, but its validity starts later: the current one keeps
    /// signing until then.
    Pending {
        /// The version that will be used.
        version: String,
        /// When it becomes valid.
        not_before: SystemTime,
    },
}

pub(crate) struct Settings {
    pub(crate) name: String,
    pub(crate) pinned: Option<String>,
    pub(crate) algorithm: AssertionAlgorithm,
    pub(crate) send_x5c: bool,
    /// `None`: never checked on a schedule (pinned versions).
    pub(crate) check_every: Option<Duration>,
}

struct Inner {
    vault: Vault,
    settings: Settings,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// One load or check at a time (single flight).
    loading: tokio::sync::Mutex<()>,
    /// A scheduled check is running in the background.
    checking: AtomicBool,
}

/// Signs client assertions (docs/protocol.md §3) with a certificate kept in Azure Key Vault.
///
/// The certificate is loaded on first use: the newest enabled version that is valid now (or the
/// pinned one), its secret version, PKCS#12 or PEM. Then, unless a version is pinned, the vault
/// is asked for a newer version every check interval (jittered by ±10 %), in the background, one
/// check at a time; and at once when Entra rejects an assertion with a code a new certificate may
/// cure (AADSTS700027, 700024, 7000214, 1000502, 7000274, 7000277).
///
/// A newer version is used only once its validity has started; until then the current one keeps
/// signing. A vault that cannot be reached never costs the working certificate: the failure is
/// logged, the current one kept, and the check retried after 30 s, 1 min, 2 min, … (at most the
/// interval, at least what a 429 `Retry-After` asks).
#[derive(Clone)]
pub(crate) struct KeyVaultCertificateSource {
    inner: Arc<Inner>,
}

impl fmt::Debug for KeyVaultCertificateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        f.debug_struct("KeyVaultCertificateSource")
            .field("vault", &self.inner.vault.base)
            .field("certificate", &self.inner.settings.name)
            .field("pinned", &self.inner.settings.pinned)
            .field(
                "version",
                &state.current.as_ref().map(|c| c.version.clone()),
            )
            .field(
                "pending",
                &state.pending.as_ref().map(|c| c.version.clone()),
            )
            .field("check_every", &self.inner.settings.check_every)
            .finish_non_exhaustive()
    }
}

impl KeyVaultCertificateSource {
    pub(crate) fn new(vault: Vault, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        KeyVaultCertificateSource {
            inner: Arc::new(Inner {
                vault,
                settings,
                clock,
                state: Mutex::new(State::default()),
                loading: tokio::sync::Mutex::new(()),
                checking: AtomicBool::new(false),
            }),
        }
    }

    /// Loads the certificate now if it is not loaded yet (it is otherwise loaded by the first
    /// token request). Returns the version in use.
    pub(crate) async fn load(&self) -> std::result::Result<String, KeyVaultError> {
        Ok(self.inner.current().await?.version.clone())
    }

    /// Asks the vault for a newer version now (the scheduled check does the same).
    pub(crate) async fn check_now(&self) -> std::result::Result<RotationOutcome, KeyVaultError> {
        self.inner.check("requested").await
    }

    /// The version in use and its SHA-1 thumbprint, once loaded.
    pub(crate) fn current(&self) -> Option<(String, String)> {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .current
            .as_ref()
            .map(|c| (c.version.clone(), c.thumbprint.clone()))
    }
}

impl Inner {
    /// The version to sign with: loads on first use, promotes a pending version whose validity
    /// has started.
    async fn current(&self) -> std::result::Result<Arc<Loaded>, KeyVaultError> {
        if let Some(c) = self.promote() {
            return Ok(c);
        }
        let _one = self.loading.lock().await;
        if let Some(c) = self.promote() {
            return Ok(c);
        }
        let loaded = Arc::new(self.load_first().await?);
        tracing::info!(
            vault = %self.vault.base,
            certificate = %self.settings.name,
            version = %loaded.version,
            thumbprint = %loaded.thumbprint,
            "client certificate loaded from Key Vault"
        );
        let mut state = self.lock();
        state.current = Some(loaded.clone());
        state.next_check = self
            .settings
            .check_every
            .map(|e| self.clock.now() + jitter(e));
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn promote(&self) -> Option<Arc<Loaded>> {
        let now = self.clock.now();
        let mut state = self.lock();
        let due = state
            .pending
            .as_ref()
            .is_some_and(|p| p.not_before.is_none_or(|t| t <= now));
        if due {
            let next = state.pending.take()?;
            tracing::info!(
                certificate = %self.settings.name,
                previous = %state.current.as_ref().map(|c| c.version.as_str()).unwrap_or("-"),
                version = %next.version,
                thumbprint = %next.thumbprint,
                "Key Vault certificate version is now valid; signing with it"
            );
            state.current = Some(next);
            state.switched_at = Some(now);
        }
        state.current.clone()
    }

    /// The pinned version, or the newest enabled version valid now.
    async fn load_first(&self) -> std::result::Result<Loaded, KeyVaultError> {
        let name = &self.settings.name;
        let now = self.clock.now();
        let info = match &self.settings.pinned {
            Some(v) => self.vault.certificate(name, Some(v)).await?,
            None => {
                let latest = self.vault.certificate(name, None).await?;
                if latest.attributes.usable_at(now) {
                    latest
                } else {
                    // The latest is disabled, expired or not yet valid (a rotation with a
                    // future start): the newest version that is usable now, if any.
                    match self.newest_usable(now).await? {
                        Some(v) => self.vault.certificate(name, Some(&v)).await?,
                        None => latest,
                    }
                }
            }
        };
        self.load_version(&info, now, true).await
    }

    async fn newest_usable(
        &self,
        now: SystemTime,
    ) -> std::result::Result<Option<String>, KeyVaultError> {
        let versions = self.vault.versions(&self.settings.name).await?;
        Ok(versions
            .into_iter()
            .enumerate()
            .filter(|(_, v)| v.attributes.usable_at(now))
            .max_by_key(|(i, v)| (v.attributes.created, *i))
            .map(|(_, v)| v.version))
    }

    /// Checks the version's state (a future `nbf` allowed unless `now_only`) and loads its
    /// secret.
    async fn load_version(
        &self,
        info: &CertificateInfo,
        now: SystemTime,
        now_only: bool,
    ) -> std::result::Result<Loaded, KeyVaultError> {
        let what = format!(
            "certificate {} version {}",
            self.settings.name, info.version
        );
        self.check_state(info, &what, now, now_only)?;
        let secret = self.vault.secret(&info.sid).await?;
        let source = match secret.content_type.trim().to_ascii_lowercase().as_str() {
            "application/x-pkcs12" => CertificateSource::base64_pkcs12(secret.value),
            "application/x-pem-file" => {
                let (key, certificate) = split_pem(secret.value.expose_secret());
                if key.is_empty() {
                    return Err(KeyVaultError::new(
                        Kind::NoPrivateKey,
                        format!(
                            "the secret of {what} holds no private key: the certificate's key is \
                             not exportable, or the secret was replaced by hand; create the \
                             certificate with an exportable key"
                        ),
                    ));
                }
                CertificateSource::pem(certificate.into_bytes(), Some(key.as_bytes().to_vec()))
            }
            other => {
                return Err(KeyVaultError::new(
                    Kind::ContentType,
                    format!(
                        "the secret of {what} has content type `{}`: botauth reads \
                         application/x-pkcs12 and application/x-pem-file (a certificate \
                         imported or created in Key Vault has one of them)",
                        botauth_http::internal::clean_text(other, 80)
                    ),
                ));
            }
        };
        let assertion = CertificateAssertion::builder(source)
            .thumbprint(info.sha1_hex.clone())
            .algorithm(self.settings.algorithm)
            .send_x5c(self.settings.send_x5c)
            .watch_files(false)
            .clock(self.clock.clone())
            .build()
            .map_err(|e| KeyVaultError::certificate(&what, e))?;
        Ok(Loaded {
            version: info.version.clone(),
            thumbprint: info.sha1_hex.clone(),
            not_before: info.attributes.not_before,
            assertion,
        })
    }

    /// Refuses disabled, expired, non-exportable and (when `now_only`) not-yet-valid versions.
    fn check_state(
        &self,
        info: &CertificateInfo,
        what: &str,
        now: SystemTime,
        now_only: bool,
    ) -> std::result::Result<(), KeyVaultError> {
        let a = &info.attributes;
        if !a.enabled {
            return Err(KeyVaultError::new(
                Kind::Disabled,
                format!(
                    "{what} is disabled in the vault: enable it, or let botauth use the newest enabled version (no pinned version)"
                ),
            ));
        }
        if let Some(exp) = a.expires.filter(|t| *t <= now) {
            return Err(KeyVaultError::new(
                Kind::Expired,
                format!(
                    "{what} expired on {}: renew the certificate in the vault",
                    botauth_core::internal::date::rfc3339(exp)
                ),
            ));
        }
        if let Some(nbf) = a.not_before.filter(|t| now_only && *t > now) {
            return Err(KeyVaultError::new(
                Kind::NotYetValid,
                format!(
                    "{what} is not valid before {} and no earlier version is usable: wait, or \
                     enable a version that is valid now",
                    botauth_core::internal::date::rfc3339(nbf)
                ),
            ));
        }
        if info.exportable == Some(false) {
            return Err(KeyVaultError::new(
                Kind::NotExportable,
                format!(
                    "{what} has a key that is not exportable, so its secret holds no private key \
                     and botauth cannot sign with it: create the certificate with an exportable \
                     key (policy key_props.exportable = true)"
                ),
            ));
        }
        Ok(())
    }

    /// One check of the vault for a newer version (single flight with loads).
    async fn check(&self, why: &str) -> std::result::Result<RotationOutcome, KeyVaultError> {
        let current = self.current().await?;
        let _one = self.loading.lock().await;
        let outcome = self.check_locked(&current).await;
        let now = self.clock.now();
        let mut state = self.lock();
        match &outcome {
            Ok(o) => {
                state.failures = 0;
                state.next_check = self.settings.check_every.map(|e| now + jitter(e));
                match o {
                    RotationOutcome::Unchanged { version } => tracing::debug!(
                        certificate = %self.settings.name, version = %version, reason = why,
                        "Key Vault checked: no newer certificate version"
                    ),
                    RotationOutcome::Switched {
                        from,
                        to,
                        thumbprint,
                    } => tracing::info!(
                        certificate = %self.settings.name, previous = %from, version = %to,
                        thumbprint = %thumbprint, reason = why,
                        "Key Vault certificate rotated; the next token request signs with the new version"
                    ),
                    RotationOutcome::Pending {
                        version,
                        not_before,
                    } => tracing::info!(
                        certificate = %self.settings.name, version = %version,
                        not_before = %botauth_core::internal::date::rfc3339(*not_before), reason = why,
                        "Key Vault has a newer certificate version that is not valid yet; signing with the current one until then"
                    ),
                }
            }
            Err(e) => {
                state.failures = state.failures.saturating_add(1);
                let every = self
                    .settings
                    .check_every
                    .unwrap_or(Duration::from_secs(3600));
                let backoff = FIRST_BACKOFF
                    .saturating_mul(1 << state.failures.saturating_sub(1).min(16))
                    .min(every);
                let wait = e.retry_after().map_or(backoff, |r| r.max(backoff));
                state.next_check = Some(now + wait);
                tracing::warn!(
                    certificate = %self.settings.name,
                    version = %current.version,
                    kind = %e.kind(),
                    error = %botauth_core::Report::new(e),
                    retry_in_secs = wait.as_secs(),
                    reason = why,
                    "Key Vault could not be checked for a newer certificate; keeping the current one"
                );
            }
        }
        outcome
    }

    async fn check_locked(
        &self,
        current: &Loaded,
    ) -> std::result::Result<RotationOutcome, KeyVaultError> {
        let name = &self.settings.name;
        if self.settings.pinned.is_some() {
            return Ok(RotationOutcome::Unchanged {
                version: current.version.clone(),
            });
        }
        let now = self.clock.now();
        let latest = self.vault.certificate(name, None).await?;
        let candidate =
            if latest.attributes.enabled && latest.attributes.expires.is_none_or(|t| now < t) {
                latest
            } else {
                // The latest version is disabled or expired: the newest usable one.
                match self.newest_usable(now).await? {
                    Some(v) => self.vault.certificate(name, Some(&v)).await?,
                    None => {
                        return Ok(RotationOutcome::Unchanged {
                            version: current.version.clone(),
                        });
                    }
                }
            };
        let pending_version = self.lock().pending.as_ref().map(|p| p.version.clone());
        if candidate.version == current.version {
            // The newest is the one in use: a pending one (since disabled) is dropped.
            self.lock().pending = None;
            return Ok(RotationOutcome::Unchanged {
                version: current.version.clone(),
            });
        }
        let future = candidate.attributes.not_before.filter(|t| *t > now);
        if let (Some(nbf), Some(p)) = (future, &pending_version) {
            if *p == candidate.version {
                return Ok(RotationOutcome::Pending {
                    version: p.clone(),
                    not_before: nbf,
                });
            }
        }
        let loaded = Arc::new(self.load_version(&candidate, now, false).await?);
        let mut state = self.lock();
        match future {
            Some(nbf) => {
                state.pending = Some(loaded.clone());
                Ok(RotationOutcome::Pending {
                    version: loaded.version.clone(),
                    not_before: nbf,
                })
            }
            None => {
                state.pending = None;
                state.current = Some(loaded.clone());
                state.switched_at = Some(now);
                Ok(RotationOutcome::Switched {
                    from: current.version.clone(),
                    to: loaded.version.clone(),
                    thumbprint: loaded.thumbprint.clone(),
                })
            }
        }
    }

    /// Whether a scheduled check is due now.
    fn check_due(&self) -> bool {
        let state = self.lock();
        state.current.is_some()
            && self.settings.check_every.is_some()
            && state.next_check.is_some_and(|t| t <= self.clock.now())
    }
}

/// `every` ± 10 %, so that many instances started together do not ask the vault together.
fn jitter(every: Duration) -> Duration {
    let r = (uuid::Uuid::new_v4().as_u128() % 2001) as f64 / 1000.0 - 1.0; // -1.0 ..= 1.0
    every.mul_f64(1.0 + 0.1 * r)
}

#[async_trait]
impl ClientAssertionSource for KeyVaultCertificateSource {
    async fn assertion(&self, request: &AssertionRequest<'_>) -> Result<Secret> {
        let current = self.inner.current().await?;
        if self.inner.check_due() && !self.inner.checking.swap(true, Ordering::AcqRel) {
            // In the background: a slow or unreachable vault never delays a token request.
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    let inner = self.inner.clone();
                    handle.spawn(async move {
                        let _ = inner.check("scheduled").await;
                        inner.checking.store(false, Ordering::Release);
                    });
                }
                Err(_) => self.inner.checking.store(false, Ordering::Release),
            }
        }
        current.assertion.sign(request)
    }

    /// Asks the vault for a newer version; `true` (retry once) when the signing certificate
    /// changed. Microsoft.Identity.Web reloads from the vault on the same codes.
    async fn on_rejected(&self, error: &EntraError) -> bool {
        let why = format!(
            "Entra rejected the assertion (AADSTS{})",
            error.code().unwrap_or(0)
        );
        match self.inner.check(&why).await {
            Ok(RotationOutcome::Switched { .. }) => true,
            // A background check may have switched versions while the rejected request was in
            // flight, signed with the version before: that is worth the one retry too.
            Ok(_) | Err(_) => {
                let switched_at = self.inner.lock().switched_at;
                let now = self.inner.clock.now();
                switched_at
                    .is_some_and(|t| now.duration_since(t).unwrap_or_default() < RECENT_SWITCH)
            }
        }
    }

    fn kind(&self) -> &'static str {
        "key_vault_certificate"
    }
}
