//! Cache keys, and the redaction of secrets from what is stored.
//!
//! A key is the SHA-256 of length-prefixed fields — method, normalized URL, body, the headers the
//! user asked to match, and a digest of the request's credentials — so two different requests
//! cannot produce the same byte stream, and the key stays 64 hex characters however long the
//! URL. The URL is normalized the way servers treat it: scheme and host lower-cased, default
//! port dropped, query parameters sorted, fragment dropped.
//!
//! Two kinds of sensitive input are treated differently:
//! - credential headers (`Authorization`, `Proxy-Authorization`, `Cookie`) are digested into the
//!   key, so a response fetched with one credential is never served to another (turn off with
//!   [`credentials_in_key(false)`](crate::CacheMiddlewareBuilder::credentials_in_key) for a
//!   single-identity service whose token rotates); their values are never stored;
//! - ignored parameters (query parameters or request headers such as `api_key`) are left out of
//!   the key and replaced by `REDACTED` in everything stored.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sha2::{Digest, Sha256};
use url::Url;

/// The value stored in place of a secret.
pub const REDACTED: &str = "REDACTED";

/// requests-cache's default ignored parameters: credentials commonly passed as query
/// parameters or headers.
pub const DEFAULT_IGNORED_PARAMETERS: &[&str] =
    &["Authorization", "X-API-KEY", "access_token", "api_key"];

/// Request headers that carry the caller's identity.
const CREDENTIAL_HEADERS: [HeaderName; 3] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
];

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

/// How keys are made and what is redacted; set through the middleware builder.
#[derive(Debug, Clone)]
pub(crate) struct KeyRules {
    /// Request headers whose values are part of the key, sorted by name.
    pub(crate) match_headers: Vec<HeaderName>,
    /// Query parameter names (exact) and header names (case-insensitive) to ignore and redact.
    pub(crate) ignored_parameters: Vec<String>,
    pub(crate) ignored_headers: Vec<HeaderName>,
    pub(crate) credentials_in_key: bool,
}

impl Default for KeyRules {
    fn default() -> Self {
        let mut rules = KeyRules {
            match_headers: Vec::new(),
            ignored_parameters: Vec::new(),
            ignored_headers: Vec::new(),
            credentials_in_key: true,
        };
        rules.set_ignored(DEFAULT_IGNORED_PARAMETERS.iter().map(|s| s.to_string()));
        rules
    }
}

/// Feeds one length-prefixed field to the digest, so field boundaries cannot be forged.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

impl KeyRules {
    pub(crate) fn set_ignored(&mut self, names: impl IntoIterator<Item = String>) {
        self.ignored_parameters = names.into_iter().collect();
        self.ignored_headers = self
            .ignored_parameters
            .iter()
            .filter_map(|n| HeaderName::try_from(n.as_str()).ok())
            .collect();
    }

    pub(crate) fn set_match_headers(&mut self, mut names: Vec<HeaderName>) {
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        self.match_headers = names;
    }

    fn is_ignored_param(&self, raw_name: &str) -> bool {
        let name = percent_decode(raw_name);
        self.ignored_parameters.contains(&name)
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
        field(&mut h, b"reqwest-dynamodb-cache/key/1");
        field(&mut h, method.as_str().as_bytes());
        field(&mut h, self.normalized_url(url).as_bytes());
        match body {
            Some(body) => {
                field(&mut h, b"body");
                field(&mut h, body);
            }
            None => field(&mut h, b"no-body"),
        }
        for name in &self.match_headers {
            field(&mut h, name.as_str().as_bytes());
            let values = headers.get_all(name);
            field(&mut h, &(values.iter().count() as u64).to_be_bytes());
            for v in values {
                field(&mut h, v.as_bytes());
            }
        }
        if self.credentials_in_key {
            for name in &CREDENTIAL_HEADERS {
                for v in headers.get_all(name) {
                    field(&mut h, name.as_str().as_bytes());
                    field(&mut h, v.as_bytes());
                }
            }
        }
        CacheKey(hex::encode(h.finalize()))
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
        CacheKey(hex::encode(h.finalize()))
    }

    /// The URL as it enters the key: scheme and host lower-cased and default port dropped (the
    /// `url` crate does both when parsing), fragment dropped, ignored parameters removed, the
    /// remaining query parameters sorted.
    pub(crate) fn normalized_url(&self, url: &Url) -> String {
        let mut out = String::with_capacity(url.as_str().len());
        out.push_str(url.scheme());
        out.push_str("://");
        out.push_str(url.host_str().unwrap_or(""));
        if let Some(port) = url.port() {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out.push_str(url.path());
        if let Some(query) = url.query() {
            let mut pairs: Vec<&str> = query
                .split('&')
                .filter(|p| !p.is_empty())
                .filter(|p| !self.is_ignored_param(p.split('=').next().unwrap_or("")))
                .collect();
            if !pairs.is_empty() {
                pairs.sort_unstable();
                out.push('?');
                out.push_str(&pairs.join("&"));
            }
        }
        out
    }

    /// The URL as it may be stored: ignored parameters keep their place and name, their value
    /// becomes `REDACTED`; userinfo (a password in the URL) is removed.
    pub(crate) fn redacted_url(&self, url: &Url) -> Url {
        let mut url = url.clone();
        if !url.username().is_empty() || url.password().is_some() {
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        if let Some(query) = url.query() {
            if query
                .split('&')
                .any(|p| self.is_ignored_param(p.split('=').next().unwrap_or("")))
            {
                let redacted: Vec<String> = query
                    .split('&')
                    .map(|p| {
                        let name = p.split('=').next().unwrap_or("");
                        if self.is_ignored_param(name) {
                            format!("{name}={REDACTED}")
                        } else {
                            p.to_string()
                        }
                    })
                    .collect();
                url.set_query(Some(&redacted.join("&")));
            }
        }
        url.set_fragment(None);
        url
    }

    /// A copy of `headers` with every secret value replaced by `REDACTED` (presence is kept:
    /// HTTP rules look at whether `Authorization` was sent).
    pub(crate) fn redacted_headers(&self, headers: &HeaderMap) -> HeaderMap {
        let mut out = headers.clone();
        self.redact_in_place(&mut out);
        out
    }

    pub(crate) fn redact_in_place(&self, headers: &mut HeaderMap) {
        for name in CREDENTIAL_HEADERS.iter().chain(&self.ignored_headers) {
            if headers.contains_key(name) {
                headers.insert(name.clone(), HeaderValue::from_static(REDACTED));
            }
        }
    }
}

/// Decodes `%XX` escapes and `+` in a query parameter name, for comparison only.
fn percent_decode(raw: &str) -> String {
    url::form_urlencoded::parse(raw.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(rules: &KeyRules, method: Method, url: &str, headers: &[(&str, &str)]) -> String {
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
        // Computed independently (SHA-256 over 8-byte big-endian length-prefixed fields, in
        // Python). These digests are the on-table identity of entries: a change here orphans every
        // stored response, so it must be deliberate (and bump the key version string).
        let rules = KeyRules::default();
        assert_eq!(
            key(&rules, Method::GET, "https://example.com/a?b=2&a=1", &[]),
            "4120189c52545a2f6ce90c0c7ba2df9aeddacb7adba995919d086f919263aac7"
        );
        assert_eq!(
            key(
                &rules,
                Method::GET,
                "https://example.com/a",
                &[("authorization", "Bearer t1")]
            ),
            "bc21b0bd5d21fbb837a51060a96f274baf08a0b4551edcc88ef1b392115cd184"
        );
    }

    #[test]
    fn normalization_makes_equivalent_urls_equal() {
        let rules = KeyRules::default();
        let a = key(
            &rules,
            Method::GET,
            "HTTPS://Example.COM:443/p?b=2&a=1#frag",
            &[],
        );
        let b = key(&rules, Method::GET, "https://example.com/p?a=1&b=2", &[]);
        assert_eq!(a, b);
        assert_eq!(
            rules.normalized_url(&Url::parse("HTTP://Example.COM:80/p?z=1&a=2").unwrap()),
            "http://example.com/p?a=2&z=1"
        );
        assert_eq!(
            rules.normalized_url(&Url::parse("http://example.com:8080/").unwrap()),
            "http://example.com:8080/"
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

    #[test]
    fn ignored_parameters_leave_the_key_and_are_redacted() {
        let rules = KeyRules::default();
        let a = key(
            &rules,
            Method::GET,
            "https://e.com/p?q=1&api_key=SECRET1",
            &[],
        );
        let b = key(
            &rules,
            Method::GET,
            "https://e.com/p?api_key=SECRET2&q=1",
            &[],
        );
        let c = key(&rules, Method::GET, "https://e.com/p?q=1", &[]);
        assert_eq!(a, b);
        assert_eq!(a, c);
        let a = key(
            &rules,
            Method::GET,
            "https://e.com/p",
            &[("x-api-key", "S1")],
        );
        let b = key(
            &rules,
            Method::GET,
            "https://e.com/p",
            &[("x-api-key", "S2")],
        );
        assert_eq!(a, b, "ignored headers are not in the key");

        let url = Url::parse("https://u:pw@e.com/p?q=1&api_key=SECRET&access_token=T#f").unwrap();
        let red = rules.redacted_url(&url);
        assert_eq!(
            red.as_str(),
            "https://e.com/p?q=1&api_key=REDACTED&access_token=REDACTED"
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("SECRET"));
        headers.insert("authorization", HeaderValue::from_static("Bearer SECRET"));
        headers.insert("accept", HeaderValue::from_static("text/plain"));
        let red = rules.redacted_headers(&headers);
        assert_eq!(red["x-api-key"], REDACTED);
        assert_eq!(red["authorization"], REDACTED);
        assert_eq!(red["accept"], "text/plain");
    }

    #[test]
    fn match_headers_enter_the_key() {
        let mut rules = KeyRules::default();
        let url = "https://e.com/p";
        assert_eq!(
            key(&rules, Method::GET, url, &[("accept", "a")]),
            key(&rules, Method::GET, url, &[("accept", "b")])
        );
        rules.set_match_headers(vec![http::header::ACCEPT]);
        assert_ne!(
            key(&rules, Method::GET, url, &[("accept", "a")]),
            key(&rules, Method::GET, url, &[("accept", "b")])
        );
    }

    #[test]
    fn field_boundaries_cannot_be_forged() {
        // Without length prefixes, ["ab", "c"] and ["a", "bc"] would feed the same bytes.
        let mut rules = KeyRules::default();
        rules.set_match_headers(vec![HeaderName::from_static("x-a")]);
        let url = "https://e.com/p";
        assert_ne!(
            key(&rules, Method::GET, url, &[("x-a", "ab"), ("x-a", "c")]),
            key(&rules, Method::GET, url, &[("x-a", "a"), ("x-a", "bc")])
        );
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

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn params() -> impl Strategy<Value = Vec<(String, String)>> {
            proptest::collection::vec(("[a-z]{1,6}", "[a-zA-Z0-9]{0,6}"), 0..8)
        }

        proptest! {
            #[test]
            fn parameter_order_and_host_case_never_change_the_key(
                ps in params(),
                host in "[a-z]{1,10}",
                path in "(/[a-z0-9]{0,8}){0,4}",
                upper in any::<bool>(),
                seed in any::<u64>(),
            ) {
                let rules = KeyRules::default();
                let query = |ps: &[(String, String)]| {
                    ps.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
                };
                let a = format!("https://{host}.com{path}?{}", query(&ps));
                let mut shuffled = ps.clone();
                if !shuffled.is_empty() {
                    let n = shuffled.len();
                    shuffled.rotate_left((seed as usize) % n);
                }
                let shown_host = if upper { host.to_uppercase() } else { host.clone() };
                let b = format!("HTTPS://{shown_host}.com:443{path}?{}&api_key=SECRET", query(&shuffled));
                prop_assert_eq!(key(&rules, Method::GET, &a, &[]), key(&rules, Method::GET, &b, &[]));
            }

            #[test]
            fn different_paths_never_share_a_key(a in "/[a-z0-9]{0,12}", b in "/[a-z0-9]{0,12}") {
                prop_assume!(a != b);
                let rules = KeyRules::default();
                prop_assert_ne!(
                    key(&rules, Method::GET, &format!("https://e.com{a}"), &[]),
                    key(&rules, Method::GET, &format!("https://e.com{b}"), &[])
                );
            }
        }
    }
}
