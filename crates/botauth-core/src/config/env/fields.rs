//! Keys and values: which table row a key matches (spellings, list indexes, typos), and how a
//! matched value is read (enumerations, time spans, PEM text).

use std::path::PathBuf;

use crate::config::model::parse_duration;
use crate::config::tables::{Choice, Row, Section, To, names};
use crate::config::vars::normalize_key;
use crate::endpoint::check_endpoint_url;
use crate::{Error, Result};

/// A section's values: which row each key matched, as spelled, with its value.
pub(super) struct Fields<'e> {
    pub(super) section: &'static Section,
    /// The section's prefix with its `{name}`/`{n}` filled in, in environment spelling.
    pub(super) prefix: String,
    pub(super) found: Vec<Found<'e>>,
}

pub(super) struct Found<'e> {
    pub(super) row: &'static Row,
    /// The list index of an indexed element (`Audiences__0`).
    pub(super) index: Option<u64>,
    pub(super) key: &'e str,
    pub(super) value: &'e str,
}

impl<'e> Fields<'e> {
    /// The value for `to`: the key's canonical spelling wins over its legacy aliases (`OAuthUrl`
    /// over `OAuthApiEndpoint`), as in the SDKs.
    pub(super) fn find(&self, to: To) -> Option<&Found<'e>> {
        let mut candidates = self
            .found
            .iter()
            .filter(|f| f.row.to == to && f.index.is_none());
        let first = candidates.next()?;
        let canonical = |f: &Found<'_>| normalize_key(f.key).ends_with(&normalize_key(f.row.key));
        if canonical(first) {
            return Some(first);
        }
        Some(candidates.find(|f| canonical(f)).unwrap_or(first))
    }

    pub(super) fn get(&self, to: To) -> Option<&'e str> {
        self.find(to).map(|f| f.value)
    }

    pub(super) fn has(&self, to: To) -> bool {
        self.found.iter().any(|f| f.row.to == to)
    }

    /// The key for `to` as spelled, or the canonical spelling when absent.
    pub(super) fn key(&self, to: To) -> String {
        self.find(to).map_or_else(
            || {
                let row = self.section.rows.iter().find(|r| r.to == to);
                format!("{}{}", self.prefix, row.map_or("", |r| r.key))
            },
            |f| f.key.to_owned(),
        )
    }

    pub(super) fn require(&self, to: To, why: &str) -> Result<&'e str> {
        self.get(to)
            .ok_or_else(|| Error::config(self.key(to), format!("is required{why}: {}", to.what())))
    }

    /// A list: the comma/space-separated value of the key itself, then its indexed elements.
    pub(super) fn list(&self, to: To) -> Vec<String> {
        let mut items: Vec<(u64, &str)> = self
            .found
            .iter()
            .filter(|f| f.row.to == to)
            .map(|f| (f.index.map_or(0, |i| i + 1), f.value))
            .collect();
        items.sort_by_key(|(i, _)| *i);
        items
            .into_iter()
            .flat_map(|(i, v)| {
                if i == 0 {
                    v.split(|c: char| c == ',' || c.is_whitespace())
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                } else {
                    vec![v.to_owned()]
                }
            })
            .collect()
    }

    pub(super) fn bool(&self, to: To) -> Result<Option<bool>> {
        self.get(to)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Error::config(self.key(to), "must be `true` or `false`")),
            })
            .transpose()
    }

    pub(super) fn url(&self, to: To) -> Result<Option<String>> {
        self.get(to)
            .map(|v| check_endpoint_url(&self.key(to), v))
            .transpose()
    }

    pub(super) fn path(&self, to: To) -> Option<PathBuf> {
        self.get(to).map(PathBuf::from)
    }
}

/// A key's sections: `Connections__Bot__Settings` and `Connections:Bot:Settings` are both
/// `[Connections, Bot, Settings]`.
pub(super) fn segments(key: &str) -> Vec<&str> {
    key.split("__")
        .flat_map(|s| s.split(':'))
        .filter(|s| !s.is_empty())
        .collect()
}

/// A connection name compared as the SDKs' spellings require (`SERVICE_CONNECTION` =
/// `serviceConnection` = `ServiceConnection`).
pub(super) fn comparable_name(name: &str) -> String {
    name.replace('_', "").to_ascii_lowercase()
}

/// Whether `row` matches the normalized key rest: `Some(None)` for the key itself,
/// `Some(Some(i))` for element `i` of a list key.
pub(super) fn match_row(row: &Row, rest: &str, exact: bool) -> Option<Option<u64>> {
    let names = std::iter::once(row.key).chain(row.aliases.iter().copied());
    for name in names {
        let name = if exact {
            name.to_owned()
        } else {
            normalize_key(name)
        };
        if rest == name {
            return Some(None);
        }
        if let Some(tail) = rest.strip_prefix(&name).and_then(|t| t.strip_prefix("__")) {
            if row.to == To::Nested {
                return Some(None);
            }
            if row.to.is_list() && !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
                return tail.parse().ok().map(Some);
            }
        }
    }
    None
}

/// "`key` is not a key botauth knows; did you mean `nearest`?"
pub(super) fn unknown_key(key: &str, section: &Section) -> String {
    let tail = normalize_key(key);
    let nearest = section
        .rows
        .iter()
        .flat_map(|r| std::iter::once(r.key).chain(r.aliases.iter().copied()))
        .min_by_key(|name| {
            let name = normalize_key(name);
            let start = tail.len().saturating_sub(name.len() + 2);
            (start..=tail.len())
                .filter_map(|i| tail.get(i..))
                .map(|t| edit_distance(t, &name))
                .min()
                .unwrap_or(usize::MAX)
        });
    let prefix = section
        .prefix
        .replace("{name}", "<name>")
        .replace("{n}", "<n>");
    match nearest {
        Some(name) => {
            format!("{key} is not a key botauth knows and is ignored: did you mean {prefix}{name}?")
        }
        None => format!("{key} is not a key botauth knows and is ignored"),
    }
}

/// Levenshtein distance (ASCII, case already folded).
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(previous + 1).min(row[j] + 1);
        }
    }
    row[b.len()]
}

/// Resolves an enumeration value by name (any case) or .NET number.
pub(super) fn pick<'t>(
    choices: &'t [Choice],
    value: &str,
    key: &str,
    what: &str,
) -> Result<&'t Choice> {
    choices
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(value) || value.parse() == Ok(c.number))
        .ok_or_else(|| {
            Error::config(
                key,
                format!(
                    "unknown {what}{}: use {}",
                    shown(value),
                    names(choices, true)
                ),
            )
        })
}

/// A .NET `TimeSpan` (`12:00:00`, `1.00:00:00`) or a botauth duration (`30s`, `3600`).
pub(super) fn parse_timespan(key: &str, value: &str) -> Result<std::time::Duration> {
    let v = value.trim();
    if !v.contains(':') {
        return parse_duration(key, v);
    }
    let (days, clock) = match v.split_once('.') {
        Some((d, rest)) if rest.contains(':') && !d.contains(':') => (d, rest),
        _ => ("0", v),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let number = |s: &str| s.parse::<f64>().ok().filter(|n| n.is_finite() && *n >= 0.0);
    let seconds = match (number(days), parts.as_slice()) {
        (Some(d), [h, m, s]) => number(h)
            .zip(number(m))
            .zip(number(s))
            .map(|((h, m), s)| d * 86_400.0 + h * 3_600.0 + m * 60.0 + s),
        _ => None,
    };
    match seconds {
        Some(s) if s > 0.0 => parse_duration(key, &s.to_string()),
        _ => Err(Error::config(
            key,
            "is not a time span: use `hh:mm:ss` (`12:00:00`), `d.hh:mm:ss`, or seconds",
        )),
    }
}

/// How an error mentions a value the user gave for an enumerated key: quoted when it looks like a
/// word (a typo worth showing), otherwise not at all (it may be a secret pasted one line off).
pub(super) fn shown(value: &str) -> String {
    if value.len() <= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        format!(" `{value}`")
    } else {
        String::new()
    }
}

/// PEM text put in a one-line variable (a `.env` file, a portal setting) often spells its line
/// breaks as `\n`.
pub(super) fn unescape_newlines(pem: &str) -> String {
    if pem.contains('\n') {
        pem.to_owned()
    } else {
        pem.replace("\\n", "\n")
    }
}
