//! File stamps: what a certificate or key file looked like, so that hot reload notices a change
//! without reading the file.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a file looked like: modification time, length, and on Unix its inode and change time,
/// so that a same-length replacement within the timestamp's resolution (a renamed-in file, a
/// Kubernetes secret's symlink swap) is still seen.
pub(crate) type Stamp = Option<(SystemTime, u64, u64, i64)>;

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

#[cfg(unix)]
fn ctime_ns(m: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt as _;
    m.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.ctime_nsec())
}

#[cfg(not(unix))]
fn ctime_ns(_: &std::fs::Metadata) -> i64 {
    0
}

/// The stamp of the file at `path`, `None` when it cannot be read.
pub(crate) fn of(path: &Path) -> Stamp {
    std::fs::metadata(path).ok().map(|m| {
        (
            m.modified().unwrap_or(UNIX_EPOCH),
            m.len(),
            inode(&m),
            ctime_ns(&m),
        )
    })
}
