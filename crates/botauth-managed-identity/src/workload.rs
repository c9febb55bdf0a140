//! [`WorkloadIdentityAssertion`]: the projected service-account token of AKS workload identity
//! (or any file holding a federated assertion), re-read when it changes.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;
use botauth_core::{AssertionRequest, ClientAssertionSource, EntraError, Error, Result, Secret};

/// The largest token file accepted: projected tokens are a few kilobytes.
const MAX_FILE_BYTES: u64 = 64 * 1024;

/// What identifies one version of the file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(metadata);
        #[cfg(not(unix))]
        let inode = 0;
        Stamp {
            modified: metadata.modified().ok(),
            len: metadata.len(),
            inode,
        }
    }
}

/// The contents of a token file as the client assertion (`AZURE_FEDERATED_TOKEN_FILE`,
/// Microsoft.Identity.Web's `SignedAssertionFilePath`).
///
/// kubelet rotates the file (by swapping a symbolic link), so every assertion checks the file's
/// modification time, length and inode, and reads it again only when one of them changed.
pub struct WorkloadIdentityAssertion {
    path: PathBuf,
    cached: Mutex<Option<(Stamp, Secret)>>,
}

impl fmt::Debug for WorkloadIdentityAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkloadIdentityAssertion")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl WorkloadIdentityAssertion {
    /// Assertions read from `path`. Nothing is read until the first assertion.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        WorkloadIdentityAssertion {
            path: path.into(),
            cached: Mutex::new(None),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Option<(Stamp, Secret)>> {
        self.cached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current contents: from the cache when the file is unchanged.
    async fn current(&self) -> Result<Secret> {
        let metadata = tokio::fs::metadata(&self.path)
            .await
            .map_err(|e| self.unreadable(e))?;
        let stamp = Stamp::of(&metadata);
        if let Some((cached, value)) = &*self.cache() {
            if *cached == stamp {
                return Ok(value.clone());
            }
        }
        // A FIFO or a device would hang or flood the read; a token is a small regular file.
        if !metadata.is_file() {
            return Err(self.bad("is not a regular file"));
        }
        let too_large = || self.bad("is larger than 64 KiB, so it is not a token");
        if metadata.len() > MAX_FILE_BYTES {
            return Err(too_large());
        }
        let path = self.path.clone();
        // Bounded, in case the file grew after the check.
        let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            use std::io::Read as _;
            let mut bytes = Vec::new();
            std::fs::File::open(&path)?
                .take(MAX_FILE_BYTES + 1)
                .read_to_end(&mut bytes)?;
            Ok(bytes)
        })
        .await
        .map_err(|_| self.bad("could not be read to the end"))?
        .map_err(|e| self.unreadable(e))?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(too_large());
        }
        let text = String::from_utf8(bytes).map_err(|_| self.bad("is not text"))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(self.bad("is empty"));
        }
        let value = Secret::new(token);
        tracing::debug!(path = %self.path.display(), "workload identity token file read");
        *self.cache() = Some((stamp, value.clone()));
        Ok(value)
    }

    fn unreadable(&self, e: std::io::Error) -> Error {
        Error::credential_with_source(
            format!(
                "the federated token file {} cannot be read: check AZURE_FEDERATED_TOKEN_FILE and \
                 that the workload identity webhook mounted the token",
                self.path.display()
            ),
            e,
        )
    }

    fn bad(&self, what: &str) -> Error {
        Error::credential(format!(
            "the federated token file {} {what}",
            self.path.display()
        ))
    }
}

#[async_trait]
impl ClientAssertionSource for WorkloadIdentityAssertion {
    async fn assertion(&self, _request: &AssertionRequest<'_>) -> Result<Secret> {
        self.current().await
    }

    /// Reads the file again; worth a retry only when its contents changed.
    async fn on_rejected(&self, _error: &EntraError) -> bool {
        let before = self.cache().take().map(|(_, v)| v);
        match self.current().await {
            Ok(now) => before.is_none_or(|b| b != now),
            Err(_) => false,
        }
    }

    fn kind(&self) -> &'static str {
        "workload_identity"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::ErrorKind;

    fn req() -> AssertionRequest<'static> {
        AssertionRequest::new("https://login/t/oauth2/v2.0/token", "app")
    }

    fn rejected() -> EntraError {
        EntraError::from_body(
            401,
            br#"{"error":"invalid_client","error_codes":[700024]}"#,
            None,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn rereads_only_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first.jwt\n").unwrap();
        let a = WorkloadIdentityAssertion::new(&path);
        let one = a.assertion(&req()).await.unwrap();
        assert_eq!(one.expose_secret(), "first.jwt");
        // Unchanged file: the same allocation comes back, nothing was read.
        assert!(a.assertion(&req()).await.unwrap().ptr_eq(&one));

        // kubelet's rotation: a new file swapped in (new inode, new length).
        let next = dir.path().join("token.new");
        std::fs::write(&next, "second-token.jwt").unwrap();
        std::fs::rename(&next, &path).unwrap();
        let two = a.assertion(&req()).await.unwrap();
        assert_eq!(two.expose_secret(), "second-token.jwt");

        // A rejection re-reads; unchanged contents are not worth a retry.
        assert!(!a.on_rejected(&rejected()).await);
        std::fs::write(&next, "third-token.jwt").unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert!(a.on_rejected(&rejected()).await);
        assert_eq!(
            a.assertion(&req()).await.unwrap().expose_secret(),
            "third-token.jwt"
        );
        assert!(!format!("{a:?}").contains("third"));
    }

    #[tokio::test]
    async fn bad_files_are_credential_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = WorkloadIdentityAssertion::new(dir.path().join("nope"));
        let e = missing.assertion(&req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Credential);
        assert!(e.to_string().contains("cannot be read"), "{e}");

        let empty = dir.path().join("empty");
        std::fs::write(&empty, "  \n").unwrap();
        let e = WorkloadIdentityAssertion::new(&empty)
            .assertion(&req())
            .await
            .unwrap_err();
        assert!(e.to_string().ends_with("is empty"), "{e}");

        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 64 * 1024 + 1]).unwrap();
        let e = WorkloadIdentityAssertion::new(&big)
            .assertion(&req())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("larger than 64 KiB"), "{e}");

        let binary = dir.path().join("bin");
        std::fs::write(&binary, [0xff, 0xfe]).unwrap();
        let e = WorkloadIdentityAssertion::new(&binary)
            .assertion(&req())
            .await
            .unwrap_err();
        assert!(e.to_string().ends_with("is not text"), "{e}");
        assert_eq!(e.kind(), ErrorKind::Credential);

        // A directory (or a FIFO, a device) is not read at all.
        let e = WorkloadIdentityAssertion::new(dir.path())
            .assertion(&req())
            .await
            .unwrap_err();
        assert!(e.to_string().ends_with("is not a regular file"), "{e}");
    }
}
