//! Azure Arc-enabled servers: a `401` challenge names a key file that only local administrators
//! can read; its contents prove that the caller runs on the machine.

use std::path::{Path, PathBuf};

use botauth_core::{Error, Result, Secret};

use crate::request::{Header, IdParams, Spec};
use crate::source::ManagedIdentitySource;

/// `GET $IDENTITY_ENDPOINT?api-version=2020-06-01&resource=R`, `Metadata: true`. Arc has the
/// machine's system-assigned identity only.
pub(crate) const SPEC: Spec = Spec {
    source: ManagedIdentitySource::AzureArc,
    api_version: Some("2020-06-01"),
    ids: IdParams {
        client_id: None,
        object_id: None,
        resource_id: None,
    },
    header: Header::Metadata,
};

/// The largest key file accepted (docs/protocol.md §4): anything bigger is not an Arc key.
pub(crate) const MAX_KEY_BYTES: u64 = 4096;

/// Reads the key file named by the challenge `WWW-Authenticate: Basic realm=<path>`.
///
/// The path comes from a network answer, so it is checked before anything is read: it must be a
/// `.key` file directly inside `directory` (the agent's token directory), and at most 4096 bytes.
/// Otherwise any local process answering on the Arc port could make us read and send any file.
pub(crate) async fn read_challenge_key(
    www_authenticate: Option<&str>,
    directory: &Path,
) -> Result<Secret> {
    let header = www_authenticate
        .ok_or_else(|| challenge_error("answered 401 without a WWW-Authenticate challenge"))?;
    let path = realm_path(header).ok_or_else(|| {
        challenge_error("answered 401 with a challenge that is not `Basic realm=<key file>`")
    })?;
    // Every check is made on the resolved path, and the file is opened once and judged by that
    // handle: the name in the challenge may be a symbolic link, and what it points at may change
    // between a check and a read.
    let resolved = check_key_path(&path, directory).await?;
    let bytes = tokio::task::spawn_blocking(move || read_bounded(&resolved))
        .await
        .map_err(|_| challenge_error("key file read was interrupted"))??;
    let key = String::from_utf8(bytes)
        .map_err(|_| challenge_error("named a key file that is not text"))?;
    Ok(Secret::new(key.trim().to_owned()))
}

/// Reads at most [`MAX_KEY_BYTES`] from a regular file, checked through the open handle.
fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read as _;
    let unreadable = "the challenge's key file cannot be read (run as a member of the himds group or as administrator)";
    let file = std::fs::File::open(path).map_err(|e| key_error(unreadable, e))?;
    let metadata = file.metadata().map_err(|e| key_error(unreadable, e))?;
    if !metadata.is_file() {
        return Err(challenge_error(
            "named a key file that is not a regular file",
        ));
    }
    let too_large =
        || challenge_error("named a key file larger than 4096 bytes, which is not an Arc key");
    if metadata.len() > MAX_KEY_BYTES {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(MAX_KEY_BYTES as usize);
    // One byte more than allowed, so a file that grew after the check is still caught.
    file.take(MAX_KEY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| key_error(unreadable, e))?;
    if bytes.len() as u64 > MAX_KEY_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

fn realm_path(header: &str) -> Option<PathBuf> {
    let (scheme, rest) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let (name, value) = rest.trim().split_once('=')?;
    if !name.trim().eq_ignore_ascii_case("realm") {
        return None;
    }
    let value = value.trim().trim_matches('"');
    (!value.is_empty()).then(|| PathBuf::from(value))
}

/// The resolved key file, when the challenge's path names a `.key` file directly inside
/// `directory` once `..` and symbolic links are resolved.
async fn check_key_path(path: &Path, directory: &Path) -> Result<PathBuf> {
    let is_key = |p: &Path| p.extension().and_then(|e| e.to_str()) == Some("key");
    if !is_key(path) {
        return Err(challenge_error("named a file that is not a `.key` file"));
    }
    let outside = || {
        challenge_error(&format!(
            "named a key file outside the Arc agent's token directory {}",
            directory.display()
        ))
    };
    let resolved = tokio::fs::canonicalize(path)
        .await
        .map_err(|e| key_error("the challenge's key file cannot be read", e))?;
    // A `.key` link to some other file is not a key file.
    if !is_key(&resolved) {
        return Err(challenge_error("named a file that is not a `.key` file"));
    }
    let directory = tokio::fs::canonicalize(directory)
        .await
        .map_err(|_| outside())?;
    if resolved.parent() != Some(directory.as_path()) {
        return Err(outside());
    }
    Ok(resolved)
}

fn challenge_error(what: &str) -> Error {
    Error::credential(format!("the Azure Arc identity endpoint {what}"))
}

fn key_error(what: &str, e: std::io::Error) -> Error {
    Error::credential_with_source(what, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::ErrorKind;

    #[test]
    fn realms() {
        assert_eq!(
            realm_path("Basic realm=/var/opt/azcmagent/tokens/a.key"),
            Some(PathBuf::from("/var/opt/azcmagent/tokens/a.key"))
        );
        assert_eq!(
            realm_path("basic  realm=\"/t/a.key\""),
            Some(PathBuf::from("/t/a.key"))
        );
        assert_eq!(realm_path("Bearer realm=/t/a.key"), None);
        assert_eq!(realm_path("Basic"), None);
        assert_eq!(realm_path("Basic realm="), None);
        assert_eq!(realm_path("Basic charset=/t/a.key"), None);
    }

    async fn read(header: Option<&str>, dir: &Path) -> Result<Secret> {
        read_challenge_key(header, dir).await
    }

    fn message(e: Error) -> String {
        assert_eq!(e.kind(), ErrorKind::Credential);
        e.to_string()
    }

    #[tokio::test]
    async fn key_file_checks() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let good = dir.path().join("k.key");
        std::fs::write(&good, "secret-key\n").unwrap();
        let header = format!("Basic realm={}", good.display());
        assert_eq!(
            read(Some(&header), dir.path())
                .await
                .unwrap()
                .expose_secret(),
            "secret-key"
        );

        assert!(
            message(read(None, dir.path()).await.unwrap_err())
                .contains("without a WWW-Authenticate")
        );
        assert!(
            message(read(Some("Bearer x"), dir.path()).await.unwrap_err())
                .contains("not `Basic realm")
        );

        let elsewhere = other.path().join("k.key");
        std::fs::write(&elsewhere, "x").unwrap();
        let e = read(
            Some(&format!("Basic realm={}", elsewhere.display())),
            dir.path(),
        )
        .await;
        assert!(message(e.unwrap_err()).contains("outside the Arc agent's token directory"));

        let sneaky = dir
            .path()
            .join("..")
            .join(other.path().file_name().unwrap())
            .join("k.key");
        let e = read(
            Some(&format!("Basic realm={}", sneaky.display())),
            dir.path(),
        )
        .await;
        assert!(message(e.unwrap_err()).contains("outside"));

        let txt = dir.path().join("k.txt");
        std::fs::write(&txt, "x").unwrap();
        let e = read(Some(&format!("Basic realm={}", txt.display())), dir.path()).await;
        assert!(message(e.unwrap_err()).contains("not a `.key` file"));

        let big = dir.path().join("big.key");
        std::fs::write(&big, vec![b'a'; 4097]).unwrap();
        let e = read(Some(&format!("Basic realm={}", big.display())), dir.path()).await;
        assert!(message(e.unwrap_err()).contains("larger than 4096 bytes"));
        let max = dir.path().join("max.key");
        std::fs::write(&max, vec![b'a'; 4096]).unwrap();
        let ok = read(Some(&format!("Basic realm={}", max.display())), dir.path()).await;
        assert_eq!(ok.unwrap().expose_secret().len(), 4096);

        let missing = dir.path().join("gone.key");
        let e = read(
            Some(&format!("Basic realm={}", missing.display())),
            dir.path(),
        )
        .await;
        assert!(message(e.unwrap_err()).contains("cannot be read"));
    }

    /// A `.key` name that is a link to another file is judged by the file it resolves to.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_key_named_link_to_another_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let notes = dir.path().join("notes.txt");
        std::fs::write(&notes, "NOT-A-KEY").unwrap();
        let link = dir.path().join("evil.key");
        std::os::unix::fs::symlink(&notes, &link).unwrap();
        let e = read(Some(&format!("Basic realm={}", link.display())), dir.path()).await;
        assert!(message(e.unwrap_err()).contains("not a `.key` file"));
        // A link to a real key file in the directory is fine.
        let key = dir.path().join("real.key");
        std::fs::write(&key, "k").unwrap();
        let alias = dir.path().join("alias.key");
        std::os::unix::fs::symlink(&key, &alias).unwrap();
        let ok = read(
            Some(&format!("Basic realm={}", alias.display())),
            dir.path(),
        )
        .await;
        assert_eq!(ok.unwrap().expose_secret(), "k");
    }
}
