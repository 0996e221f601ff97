//! Cache keys, and the redaction of secrets from what is stored and logged.
//!
//! A key is the SHA-256 of length-prefixed fields — method, normalized URL, body, an explicit
//! Host, and the request's credentials — so two different requests cannot produce the same byte
//! stream, and the key stays 64 hex characters however long the URL. The headers the user asks
//! to match (`match_headers`) are not in it: the cache varies on them as on Vary, each value a
//! variant of the URL's entry, so that an invalidation of the URL
//! reaches every value (RFC 9111 §4.4). The URL is
//! normalized the way servers treat it (RFC 3986 §6.2.2): scheme and host lower-cased, default
//! port dropped, percent-encoded unreserved characters decoded (`%7E` is `~`), fragment dropped,
//! query parameters sorted by name with the order of a name's repeated values kept (`?a=1&a=2`
//! and `?a=2&a=1` are different requests).
//!
//! Secrets are never stored or logged in clear, and never make two callers share an entry.
//! Redaction replaces a secret with a keyed digest of it (`REDACTED-` and 32 hex digits of an
//! HMAC-SHA256), not with one constant, so two different secrets stay different everywhere a
//! request travels inside the cache: in its key, in Vary matching, in variant keys and in
//! request coalescing. Three kinds of input are treated this way:
//! - credentials: the headers `Authorization`, `Proxy-Authorization` and `Cookie`, the user
//!   name and password of a URL, and the credential parameters — query parameters or headers
//!   named in [`DEFAULT_CREDENTIAL_PARAMETERS`] (requests-cache's list) or set with
//!   [`credential_parameters`](crate::CacheMiddlewareBuilder::credential_parameters), names
//!   matched case-insensitively. Their digests are part of the key, so a response fetched with
//!   one credential is never served to another. A single-identity service whose token rotates
//!   can turn that off with
//!   [`credentials_in_key(false)`](crate::CacheMiddlewareBuilder::credentials_in_key);
//! - excluded parameters ([`ignored_parameters`](crate::CacheMiddlewareBuilder::ignored_parameters),
//!   requests-cache's meaning, none by default): left out of the key entirely, so callers that
//!   differ only in them share entries — an explicit opt-in;
//! - both are redacted to their digest in the stored URL and request headers, and in every
//!   URL the cache logs.
//!
//! The digest is keyed with [`redaction_key`](crate::CacheMiddlewareBuilder::redaction_key), or
//! else with the key in the environment variable [`REDACTION_KEY_ENV`], or else with a built-in
//! key. The built-in key keeps secrets out of the table and two secrets apart, but it ships with
//! the crate: anyone who can read the table can compute the digest of a guessed secret and find
//! it. Give every instance that shares the table the same random key of your own to rule that
//! out.
//!
//! Split by role: this file makes keys ([`CacheKey`], `KeyRules`); `normalize` is the URL as
//! it enters a key; `redaction` is the `Redactor`, which owns the HMAC key and the names of the
//! credential and excluded parameters. The middleware holds the `Redactor` and the key rules
//! share it (an `Arc`), rather than the rules owning it and the middleware reaching through
//! them: most redaction (stored URLs and request headers, log lines, error text) has nothing
//! to do with a key, and with one shared value the digests in a key and in a stored URL cannot
//! disagree.

mod normalize;
mod redaction;

use std::fmt;
use std::sync::Arc;

use http::{HeaderMap, HeaderName, Method};
use sha2::{Digest, Sha256};
use url::Url;

pub(crate) use self::redaction::{key_from_env, Redactor};
pub use self::redaction::{DEFAULT_CREDENTIAL_PARAMETERS, REDACTED, REDACTION_KEY_ENV};

/// The partition key of one stored response: 64 lowercase hex characters (a SHA-256).
///
/// A store may prefix it with its namespace before writing.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a key read back from a store (for maintenance tools).
    pub fn from_string(key: String) -> Self {
        CacheKey(key)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.0)
    }
}

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How keys are made: the headers that enter them, and whether credentials do.
///
/// Credentials enter a key as their digest, made by the same [`Redactor`] that redacts what
/// the middleware stores and logs (shared, not copied), so one HMAC key and one list of
/// credential and excluded names hold everywhere.
#[derive(Clone, Debug)]
pub(crate) struct KeyRules {
    /// Request headers the cache varies on besides Vary, sorted by name.
    match_headers: Vec<HeaderName>,
    pub(crate) credentials_in_key: bool,
    redactor: Arc<Redactor>,
}

impl Default for KeyRules {
    /// No match headers, credentials in the key, the default [`Redactor`].
    fn default() -> Self {
        KeyRules {
            match_headers: Vec::new(),
            credentials_in_key: true,
            redactor: Arc::default(),
        }
    }
}

/// Feeds one length-prefixed field to the digest, so field boundaries cannot be forged.
/// A SHA-256 digest in lower-case hex. `hex::encode` builds its string a `char` at a time, which
/// showed in a hit's profile; writing the 64 bytes at once does not.
fn hex_digest(digest: &[u8]) -> String {
    let mut out = vec![0u8; digest.len() * 2];
    hex::encode_to_slice(digest, &mut out).expect("twice the digest's length");
    String::from_utf8(out).expect("hex digits are ASCII")
}

fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

impl KeyRules {
    pub(crate) fn set_match_headers(&mut self, mut names: Vec<HeaderName>) {
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        self.match_headers = names;
    }

    /// The request headers the cache varies on besides Vary (`match_headers`). They are not
    /// part of the URL's key: each value is a variant of the URL's entry, as for Vary, so an
    /// invalidation of the URL reaches every value (RFC 9111 §4.4).
    pub(crate) fn match_headers(&self) -> &[HeaderName] {
        &self.match_headers
    }

    /// Digest credentials with `redactor`, the one the middleware redacts with.
    pub(crate) fn share_redactor(&mut self, redactor: Arc<Redactor>) {
        self.redactor = redactor;
    }

    /// The key of a request. `body` is the request body for methods that have one.
    pub(crate) fn key_for(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> CacheKey {
        let mut h = Sha256::new();
        field(&mut h, b"reqwest-dynamodb-cache/key/2");
        field(&mut h, method.as_str().as_bytes());
        field(&mut h, self.normalized_url(url).as_bytes());
        match body {
            Some(body) => {
                field(&mut h, b"body");
                field(&mut h, body);
            }
            None => field(&mut h, b"no-body"),
        }
        // An explicit Host names another target than the URL's host (RFC 9110 §7.2).
        if let Some(host) = headers.get(http::header::HOST) {
            field(&mut h, b"host");
            field(&mut h, host.as_bytes().to_ascii_lowercase().as_slice());
        }
        if self.credentials_in_key {
            for name in self.redactor.credential_headers() {
                for v in headers.get_all(name) {
                    field(&mut h, name.as_str().as_bytes());
                    let tag = self.redactor.tag(name.as_str(), v.as_bytes());
                    field(&mut h, tag.as_bytes());
                }
            }
            if let Some(userinfo) = userinfo(url) {
                field(&mut h, b"userinfo");
                let tag = self.redactor.tag("userinfo", userinfo.as_bytes());
                field(&mut h, tag.as_bytes());
            }
        }
        CacheKey(hex_digest(&h.finalize()))
    }

    /// The key of one variant of a URL whose responses vary (RFC 9111 §4.1): the primary key,
    /// the Vary-named fields and the request's (normalized, redacted) values of them.
    pub(crate) fn variant_key<'a>(
        &self,
        primary: &CacheKey,
        names: impl Iterator<Item = &'a str>,
        headers: &HeaderMap,
    ) -> CacheKey {
        let mut h = Sha256::new();
        field(&mut h, b"reqwest-dynamodb-cache/variant/1");
        field(&mut h, primary.0.as_bytes());
        let mut names: Vec<&str> = names.collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            field(&mut h, name.as_bytes());
            let values = headers.get_all(name);
            field(&mut h, &(values.iter().count() as u64).to_be_bytes());
            for v in values {
                field(&mut h, v.as_bytes());
            }
        }
        CacheKey(hex_digest(&h.finalize()))
    }
}

/// The user name and password of a URL, when it has any.
fn userinfo(url: &Url) -> Option<String> {
    (!url.username().is_empty() || url.password().is_some())
        .then(|| format!("{}:{}", url.username(), url.password().unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    /// The key `rules` give a request without a body, as text.
    pub(super) fn key(
        rules: &KeyRules,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> String {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                HeaderName::try_from(*k).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        rules
            .key_for(&method, &Url::parse(url).unwrap(), &map, None)
            .0
    }

    #[test]
    fn fixed_vectors() {
        // Computed independently (SHA-256 over 8-byte big-endian length-prefixed fields, and
        // HMAC-SHA256 with the built-in redaction key, in Python; the digest itself is
        // `redaction::tests::fixed_vector`). These digests are the on-table identity of
        // entries: a change here orphans every stored response, so it must be deliberate (and
        // bump the key version string).
        let rules = KeyRules::default();
        assert_eq!(
            key(&rules, Method::GET, "https://example.com/a?b=2&a=1", &[]),
            "f775d1806e2c0df46d0690f239154bb58eab09494813a57980f2226820df49b7"
        );
        assert_eq!(
            key(
                &rules,
                Method::GET,
                "https://example.com/a",
                &[("authorization", "Bearer t1")]
            ),
            "8a1a87abb6a3ae0a9e9a08c71d909d36fe9ca138f3a03473809e78f767cf2cad"
        );
        assert_eq!(
            key(&rules, Method::GET, "https://example.com/a?api_key=k1", &[]),
            "e4282b1a597466e149edffdba0887cdf0a4db5fb7110cf2852e03fbce6b8ee38"
        );
    }

    #[test]
    fn different_requests_differ() {
        let rules = KeyRules::default();
        let base = key(&rules, Method::GET, "https://example.com/p", &[]);
        assert_ne!(
            base,
            key(&rules, Method::HEAD, "https://example.com/p", &[])
        );
        assert_ne!(base, key(&rules, Method::GET, "https://example.com/q", &[]));
        assert_ne!(base, key(&rules, Method::GET, "http://example.com/p", &[]));
        assert_ne!(
            base,
            key(&rules, Method::GET, "https://example.com/p?x", &[])
        );
        let with_body = rules
            .key_for(
                &Method::GET,
                &Url::parse("https://example.com/p").unwrap(),
                &HeaderMap::new(),
                Some(b""),
            )
            .0;
        assert_ne!(base, with_body, "an empty body is not the same as no body");
    }

    #[test]
    fn credentials_split_the_key_unless_turned_off() {
        let mut rules = KeyRules::default();
        let url = "https://example.com/p";
        let a = key(&rules, Method::GET, url, &[("authorization", "Bearer a")]);
        let b = key(&rules, Method::GET, url, &[("authorization", "Bearer b")]);
        let c = key(&rules, Method::GET, url, &[("cookie", "s=1")]);
        let none = key(&rules, Method::GET, url, &[]);
        assert_ne!(a, b);
        assert_ne!(a, none);
        assert_ne!(c, none);
        rules.credentials_in_key = false;
        let a = key(&rules, Method::GET, url, &[("authorization", "Bearer a")]);
        let b = key(&rules, Method::GET, url, &[("authorization", "Bearer b")]);
        assert_eq!(a, b);
    }

    /// Attack: two callers differ only in a credential passed as a query parameter or a
    /// header, under any spelling of its name. They must never share an entry.
    #[test]
    fn credential_parameters_split_the_key_under_any_case() {
        let rules = KeyRules::default();
        let k = |url: &str| key(&rules, Method::GET, url, &[]);
        assert_ne!(
            k("https://e.com/p?api_key=alice"),
            k("https://e.com/p?api_key=bob")
        );
        assert_ne!(
            k("https://e.com/p?API_KEY=alice"),
            k("https://e.com/p?API_KEY=bob")
        );
        assert_ne!(
            k("https://e.com/p?Access_Token=alice"),
            k("https://e.com/p?Access_Token=bob")
        );
        assert_ne!(
            k("https://e.com/p?api%5Fkey=alice"),
            k("https://e.com/p?api%5Fkey=bob"),
            "a percent-encoded name is the same name"
        );
        assert_ne!(k("https://e.com/p?api_key=alice"), k("https://e.com/p"));
        let h = |v: &str| key(&rules, Method::GET, "https://e.com/p", &[("X-Api-Key", v)]);
        assert_ne!(h("alice"), h("bob"));
        // URL user information is a credential too (reqwest turns it into Authorization
        // after the middleware has run).
        assert_ne!(k("https://alice:pw1@e.com/p"), k("https://bob:pw2@e.com/p"));
        assert_ne!(k("https://alice:pw1@e.com/p"), k("https://e.com/p"));
    }

    #[test]
    fn credentials_in_key_false_drops_them_from_the_key_but_never_stores_them() {
        let rules = KeyRules {
            credentials_in_key: false,
            ..KeyRules::default()
        };
        let k = |url: &str| key(&rules, Method::GET, url, &[]);
        assert_eq!(
            k("https://e.com/p?q=1&api_key=alice"),
            k("https://e.com/p?api_key=bob&q=1")
        );
        let url = Url::parse("https://e.com/p?api_key=alice").unwrap();
        let red = rules.redactor.redacted_url(&url);
        assert!(!red.as_str().contains("alice"));
    }

    #[test]
    fn excluded_parameters_leave_the_key_and_are_redacted() {
        let mut redactor = Redactor::default();
        redactor.set_excluded(["Tracking_ID".to_string()]);
        let mut rules = KeyRules::default();
        rules.share_redactor(Arc::new(redactor));
        let k = |url: &str| key(&rules, Method::GET, url, &[]);
        assert_eq!(
            k("https://e.com/p?q=1&tracking_id=1111"),
            k("https://e.com/p?TRACKING_ID=2222&q=1")
        );
        assert_eq!(
            k("https://e.com/p?q=1&tracking_id=1111"),
            k("https://e.com/p?q=1")
        );
        let url = Url::parse("https://e.com/p?q=1&tracking_id=1111").unwrap();
        let red = rules.redactor.redacted_url(&url);
        assert!(!red.as_str().contains("1111"));
    }

    #[test]
    fn a_name_both_credential_and_excluded_is_a_credential() {
        let mut redactor = Redactor::default();
        redactor.set_excluded([
            "API_Key".to_string(),
            "x-api-key".to_string(),
            "t".to_string(),
        ]);
        assert_eq!(redactor.overlap(), ["api_key", "x-api-key"]);
        let mut rules = KeyRules::default();
        rules.share_redactor(Arc::new(redactor));
        let k = |url: &str, h: &[(&str, &str)]| key(&rules, Method::GET, url, h);
        assert_ne!(
            k("https://e.com/p?api_key=alice", &[]),
            k("https://e.com/p?api_key=bob", &[])
        );
        assert_ne!(
            k("https://e.com/p?API_KEY=alice", &[]),
            k("https://e.com/p?API_KEY=bob", &[])
        );
        assert_eq!(k("https://e.com/p?t=1", &[]), k("https://e.com/p?t=2", &[]));
        let url = "https://e.com/p";
        assert_ne!(
            k(url, &[("x-api-key", "alice")]),
            k(url, &[("x-api-key", "bob")])
        );
    }

    #[test]
    fn an_explicit_host_header_splits_the_key() {
        let rules = KeyRules::default();
        let url = "http://127.0.0.1/p";
        assert_ne!(
            key(&rules, Method::GET, url, &[("host", "a.example")]),
            key(&rules, Method::GET, url, &[("host", "b.example")])
        );
        assert_eq!(
            key(&rules, Method::GET, url, &[("host", "A.example")]),
            key(&rules, Method::GET, url, &[("host", "a.example")])
        );
    }

    /// Match headers select a variant of the URL's entry, as Vary does: the URL's key is one
    /// for every value (so one invalidation reaches them all), the variant keys differ.
    #[test]
    fn match_headers_select_variants_of_the_urls_key() {
        let mut rules = KeyRules::default();
        let url = "https://e.com/p";
        assert_eq!(
            key(&rules, Method::GET, url, &[("accept", "a")]),
            key(&rules, Method::GET, url, &[("accept", "b")])
        );
        rules.set_match_headers(vec![http::header::ACCEPT]);
        assert_eq!(
            key(&rules, Method::GET, url, &[("accept", "a")]),
            key(&rules, Method::GET, url, &[("accept", "b")])
        );
        let primary = CacheKey(key(&rules, Method::GET, url, &[]));
        let variant = |value: &str| {
            let headers: HeaderMap = [(http::header::ACCEPT, value.parse().unwrap())]
                .into_iter()
                .collect();
            rules.variant_key(&primary, ["accept"].into_iter(), &headers)
        };
        assert_ne!(variant("a"), variant("b"));
    }

    #[test]
    fn field_boundaries_cannot_be_forged() {
        // Without length prefixes, ["ab", "c"] and ["a", "bc"] would feed the same bytes.
        let rules = KeyRules::default();
        let url = "https://e.com/p";
        let primary = CacheKey(key(&rules, Method::GET, url, &[]));
        let variant = |values: [&str; 2]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append("x-a", v.parse().unwrap());
            }
            rules.variant_key(&primary, ["x-a"].into_iter(), &headers)
        };
        assert_ne!(variant(["ab", "c"]), variant(["a", "bc"]));
        let body = |b: &[u8]| {
            rules
                .key_for(
                    &Method::POST,
                    &Url::parse(url).unwrap(),
                    &HeaderMap::new(),
                    Some(b),
                )
                .0
        };
        assert_ne!(body(b"no-body"), key(&rules, Method::POST, url, &[]));
    }

    #[test]
    fn long_urls_give_bounded_keys() {
        let rules = KeyRules::default();
        let long = format!("https://e.com/{}", "a".repeat(100_000));
        assert_eq!(key(&rules, Method::GET, &long, &[]).len(), 64);
    }
}
