//! [`ExpireAfter`], the freshness lifetime a user gives responses that state none, and the URL
//! patterns it can be configured for (requests-cache's `expire_after` and
//! `urls_expire_after`).

use std::time::Duration;

/// How long a response without freshness information of its own stays fresh
/// (requests-cache's `expire_after`).
///
/// It applies only to responses that carry no explicit expiration (`max-age`, `Expires`, or
/// `s-maxage` in a shared cache) and whose status code is cacheable by default: it is the
/// heuristic freshness lifetime RFC 9111 §4.2.2 lets a cache choose. A response's own
/// `Cache-Control` always wins, and `no-store` / `no-cache` keep their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireAfter {
    /// Fresh for ten years (3,650 days) after it was received: in practice, until it is
    /// deleted, invalidated or replaced.
    Never,
    /// Stale at once: stored only if it can be revalidated (it has an ETag or Last-Modified),
    /// and then revalidated on every use.
    Immediately,
    /// Fresh for this long after it was received.
    After(Duration),
}

impl From<Duration> for ExpireAfter {
    fn from(d: Duration) -> Self {
        ExpireAfter::After(d)
    }
}

/// `"never"`, `"immediately"`, or a humantime duration (`"1h 30m"`, `"90s"`): how an
/// [`ExpireAfter`] reads in a configuration file (feature `serde`).
#[cfg(feature = "serde")]
impl serde::Serialize for ExpireAfter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ExpireAfter::Never => s.serialize_str("never"),
            ExpireAfter::Immediately => s.serialize_str("immediately"),
            ExpireAfter::After(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
        }
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for ExpireAfter {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        // A configuration error is one line: the text, and humantime's reason.
        text.parse().map_err(|e: ParseExpireAfterError| {
            serde::de::Error::custom(format_args!("{e}: {}", e.source))
        })
    }
}

/// Text that is not an [`ExpireAfter`]: it names the text, says what reads, and its
/// [`source`](std::error::Error::source) is humantime's reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("expire_after `{text}` is not `never`, `immediately` or a duration such as `1h 30m`")]
pub struct ParseExpireAfterError {
    text: String,
    #[source]
    source: humantime::DurationError,
}

impl ParseExpireAfterError {
    /// The text that did not parse (trimmed).
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for ExpireAfter {
    type Err = ParseExpireAfterError;

    /// `"never"`, `"immediately"`, or a humantime duration such as `"1h 30m"` or `"90s"`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "never" => Ok(ExpireAfter::Never),
            "immediately" => Ok(ExpireAfter::Immediately),
            other => humantime::parse_duration(other)
                .map(ExpireAfter::After)
                .map_err(|source| ParseExpireAfterError {
                    text: other.to_owned(),
                    source,
                }),
        }
    }
}

impl ExpireAfter {
    pub(super) fn seconds(self) -> u64 {
        match self {
            // Ten years: "never" in any unit DynamoDB TTL or a person will meet.
            ExpireAfter::Never => 10 * 365 * 24 * 3600,
            ExpireAfter::Immediately => 0,
            ExpireAfter::After(d) => d.as_secs(),
        }
    }
}

/// A URL pattern for per-URL expiry, as requests-cache's `urls_expire_after`: matched against
/// the URL without its scheme (`host[:port]/path?query`), `*` standing for any run of
/// characters, and matching any URL that starts with it (`"api.example.com/v1"` covers
/// `api.example.com/v1/items?page=2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlPattern(String);

impl UrlPattern {
    pub(crate) fn new(pattern: &str) -> Self {
        let p = pattern
            .split_once("://")
            .map_or(pattern, |(_, rest)| rest)
            .trim_end_matches('*');
        UrlPattern(format!("{p}*"))
    }

    pub(crate) fn matches(&self, url: &url::Url) -> bool {
        let full = url.as_str();
        let target = full.split_once("://").map_or(full, |(_, rest)| rest);
        glob(self.0.as_bytes(), target.as_bytes())
    }
}

/// Wildcard match where `*` matches any run of bytes (greedy with backtracking, linear space).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_patterns_match_like_requests_cache() {
        let url = |u: &str| url::Url::parse(u).unwrap();
        let p = UrlPattern::new("api.example.com/v1");
        assert!(p.matches(&url("https://api.example.com/v1/items?page=2")));
        assert!(p.matches(&url("http://API.example.com/v1")));
        assert!(!p.matches(&url("https://api.example.com/v2/items")));
        let p = UrlPattern::new("*.example.com/static/*.png");
        assert!(p.matches(&url("https://cdn.example.com/static/a/b.png")));
        assert!(!p.matches(&url("https://example.org/static/b.png")));
        let p = UrlPattern::new("https://example.com/");
        assert!(p.matches(&url("http://example.com/x")));
    }
}
