//! `.env` files, read as dotenv tools read them but without touching the process environment,
//! with errors that name the file and line and never quote it.

use std::cell::Cell;
use std::io::Read;
use std::path::Path;

use super::sources::read_text;
use super::{EnvVars, Origin};
use crate::{Error, Result};

/// Reads a `.env` file with dotenvy's parser (quoting, `#` comments, `export`, `$VAR` and
/// `${VAR}` substitution), without touching the process environment. A key set twice keeps its
/// first value, as dotenvy does. Substitution is dotenvy's: it looks a name up in the process
/// environment, then in the lines above (not in an injected [`EnvVars`]).
///
/// Errors name the file and the line, never the line's text: a `.env` file holds secrets.
pub(crate) fn read_dotenv(path: &Path, shown: &str) -> Result<EnvVars> {
    let text = read_text(path, shown)?;
    let handed = Cell::new(0usize);
    let reader = LineAtATime {
        rest: text.as_bytes(),
        handed: &handed,
    };
    let mut vars = EnvVars::new();
    for item in dotenvy::from_read_iter(reader) {
        match item {
            Ok((key, value)) => {
                if vars.origin(&key).is_some() {
                    tracing::warn!(
                        file = %shown,
                        key = %key,
                        "botauth: a key is set twice in the .env file; the first value is used"
                    );
                    continue;
                }
                vars.insert_from(
                    key,
                    value,
                    Origin::DotEnv {
                        path: path.to_path_buf(),
                    },
                );
            }
            Err(e) => return Err(dotenv_error(&e, &text, handed.get(), shown)),
        }
    }
    Ok(vars)
}

fn dotenv_error(e: &dotenvy::Error, text: &str, handed: usize, shown: &str) -> Error {
    let dotenvy::Error::LineParse(entry, index) = e else {
        // I/O (or a variable error): neither carries the file's text.
        return Error::config(shown, format!("cannot read the .env file: {e}"));
    };
    // The parser stopped at the end of the entry it could not read: the last line handed to it.
    let consumed = text.get(..handed).unwrap_or(text);
    let consumed = consumed.strip_suffix('\n').unwrap_or(consumed);
    let line = consumed.matches('\n').count() + 1;
    if *index >= entry.len() && text.ends_with(entry.as_str()) && entry.contains(['"', '\'']) {
        // A quote opened and never closed: the entry runs to the end of the file.
        let spans = entry.trim_end_matches(['\n', '\r']).matches('\n').count();
        return Error::config(
            shown,
            format!(
                "invalid .env entry at line {}: a quoted value is not closed",
                line.saturating_sub(spans)
            ),
        );
    }
    Error::config(
        shown,
        format!(
            "invalid .env line {line}: write KEY=value (letters, digits and `_` in the key), and quote a \
             value that holds spaces, `#` or `$` ('…' keeps it as written)"
        ),
    )
}

/// Hands the text to dotenvy's line reader one line per `read`, so that the bytes handed out
/// when it stops tell which line it stopped at (its errors carry the entry's text, not its line).
struct LineAtATime<'a> {
    rest: &'a [u8],
    handed: &'a Cell<usize>,
}

impl Read for LineAtATime<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let line_end = self
            .rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.rest.len(), |i| i + 1);
        let n = line_end.min(buf.len());
        buf[..n].copy_from_slice(&self.rest[..n]);
        self.rest = &self.rest[n..];
        self.handed.set(self.handed.get() + n);
        Ok(n)
    }
}
