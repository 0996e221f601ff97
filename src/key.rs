//! Cache keys, and the redaction of secrets from what is stored and logged.
//!
//! A key is the SHA-256 of length-prefixed fields — method, normalized URL, body, the headers the
//! user asked to match, and the request's credentials — so two different requests cannot produce
//! the same byte stream, and the key stays 64 hex characters however long the URL. The URL is
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
//! The digest is keyed with [`redaction_key`](crate::CacheMiddlewareBuilder::redaction_key).
//! Without a key of your own, a built-in one is used: then anyone who can read the table can
//! test a guessed secret against a stored digest. Give every instance that shares the table
//! the same secret key to rule that out.

use std::borrow::Cow;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sha2::{Digest, Sha256};
use url::Url;

/// The prefix of the value stored in place of a secret; a hex digest of the secret follows.
pub const REDACTED: &str = "REDACTED";

/// requests-cache's default credential parameters: credentials commonly passed as query
/// parameters or headers. Matched case-insensitively.
pub const DEFAULT_CREDENTIAL_PARAMETERS: &[&str] =
    &["Authorization", "X-API-KEY", "access_token", "api_key"];

/// Request headers that always carry the caller's identity.
const IDENTITY_HEADERS: [HeaderName; 3] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
];

/// The built-in redaction key, used when the user gives none.
const DEFAULT_REDACTION_KEY: &[u8] = b"reqwest-dynamodb-cache/redaction/1";

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

/// What a query parameter is to the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Param {
    Plain,
    Credential,
    Excluded,
}

/// How keys are made and what is redacted; set through the middleware builder.
#[derive(Clone)]
pub(crate) struct KeyRules {
    /// Request headers whose values are part of the key, sorted by name.
    match_headers: Vec<HeaderName>,
    /// Credential parameter names, lower-cased, and the headers among them (with the identity
    /// headers, which are always credentials).
    credential_names: Vec<String>,
    credential_headers: Vec<HeaderName>,
    /// Excluded parameter names, lower-cased, and the headers among them.
    excluded_names: Vec<String>,
    excluded_headers: Vec<HeaderName>,
    pub(crate) credentials_in_key: bool,
    redaction: Hmac<Sha256>,
}

impl fmt::Debug for KeyRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The redaction key is a secret: never printed.
        f.debug_struct("KeyRules")
            .field("match_headers", &self.match_headers)
            .field("credential_names", &self.credential_names)
            .field("excluded_names", &self.excluded_names)
            .field("credentials_in_key", &self.credentials_in_key)
            .finish_non_exhaustive()
    }
}

impl Default for KeyRules {
    fn default() -> Self {
        let mut rules = KeyRules {
            match_headers: Vec::new(),
            credential_names: Vec::new(),
            credential_headers: Vec::new(),
            excluded_names: Vec::new(),
            excluded_headers: Vec::new(),
            credentials_in_key: true,
            redaction: hmac_with(DEFAULT_REDACTION_KEY),
        };
        rules.set_credentials(DEFAULT_CREDENTIAL_PARAMETERS.iter().map(|s| s.to_string()));
        rules
    }
}

fn hmac_with(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

/// Feeds one length-prefixed field to the digest, so field boundaries cannot be forged.
fn field(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_be_bytes());
    hasher.update(bytes);
}

/// Lower-cased names, and the valid header names among them.
fn names_and_headers(names: impl IntoIterator<Item = String>) -> (Vec<String>, Vec<HeaderName>) {
    let mut names: Vec<String> = names.into_iter().map(|n| n.to_ascii_lowercase()).collect();
    names.sort_unstable();
    names.dedup();
    let headers = names
        .iter()
        .filter_map(|n| HeaderName::try_from(n.as_str()).ok())
        .collect();
    (names, headers)
}

impl KeyRules {
    pub(crate) fn set_credentials(&mut self, names: impl IntoIterator<Item = String>) {
        let (names, mut headers) = names_and_headers(names);
        for h in IDENTITY_HEADERS {
            if !headers.contains(&h) {
                headers.push(h);
            }
        }
        self.credential_names = names;
        self.credential_headers = headers;
    }

    pub(crate) fn set_excluded(&mut self, names: impl IntoIterator<Item = String>) {
        (self.excluded_names, self.excluded_headers) = names_and_headers(names);
    }

    pub(crate) fn set_redaction_key(&mut self, key: &[u8]) {
        self.redaction = hmac_with(key);
    }

    pub(crate) fn set_match_headers(&mut self, mut names: Vec<HeaderName>) {
        names.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        names.dedup();
        self.match_headers = names;
    }

    /// What a query parameter is, and its canonical name (decoded, lower-cased), which its
    /// digest is keyed by: `api%5Fkey` and `API_KEY` are one name.
    fn param(&self, raw_name: &str) -> (Param, String) {
        let name = String::from_utf8_lossy(&decode_component(raw_name)).to_ascii_lowercase();
        let kind = if self.excluded_names.contains(&name) {
            Param::Excluded
        } else if self.credential_names.contains(&name) {
            Param::Credential
        } else {
            Param::Plain
        };
        (kind, name)
    }

    fn is_secret_header(&self, name: &HeaderName) -> bool {
        self.credential_headers.contains(name) || self.excluded_headers.contains(name)
    }

    /// The keyed digest that stands for a secret: `REDACTED-` and 128 bits of
    /// HMAC-SHA256(name, value), in hex.
    pub(crate) fn tag(&self, name: &str, value: &[u8]) -> String {
        let mut mac = self.redaction.clone();
        mac.update(&(name.len() as u64).to_be_bytes());
        mac.update(name.to_ascii_lowercase().as_bytes());
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        format!("{REDACTED}-{}", hex::encode(&digest[..16]))
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
        for name in &self.match_headers {
            field(&mut h, name.as_str().as_bytes());
            let values = headers.get_all(name);
            field(&mut h, &(values.iter().count() as u64).to_be_bytes());
            for v in values {
                if self.is_secret_header(name) {
                    field(&mut h, self.tag(name.as_str(), v.as_bytes()).as_bytes());
                } else {
                    field(&mut h, v.as_bytes());
                }
            }
        }
        if self.credentials_in_key {
            for name in &self.credential_headers {
                for v in headers.get_all(name) {
                    field(&mut h, name.as_str().as_bytes());
                    field(&mut h, self.tag(name.as_str(), v.as_bytes()).as_bytes());
                }
            }
            if let Some(userinfo) = userinfo(url) {
                field(&mut h, b"userinfo");
                field(&mut h, self.tag("userinfo", userinfo.as_bytes()).as_bytes());
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
    /// `url` crate does both when parsing), percent-encoding normalized, fragment and user
    /// information dropped (credentials enter the key on their own), excluded parameters
    /// removed, credential parameters replaced by their digest (or removed with
    /// `credentials_in_key(false)`), the parameters sorted by name with the order of one
    /// name's values kept.
    pub(crate) fn normalized_url(&self, url: &Url) -> String {
        let mut out = String::with_capacity(url.as_str().len());
        out.push_str(url.scheme());
        out.push_str("://");
        out.push_str(url.host_str().unwrap_or(""));
        if let Some(port) = url.port() {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out.push_str(&normalize_percent(url.path()));
        if let Some(query) = url.query() {
            let mut pairs: Vec<(Cow<'_, str>, Option<Cow<'_, str>>)> = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (name, value) = match pair.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (pair, None),
                };
                let value = match self.param(name) {
                    (Param::Plain, _) => value.map(normalize_percent),
                    (Param::Excluded, _) => continue,
                    (Param::Credential, _) if !self.credentials_in_key => continue,
                    (Param::Credential, canonical) => {
                        let decoded = decode_component(value.unwrap_or(""));
                        Some(Cow::Owned(self.tag(&canonical, &decoded)))
                    }
                };
                pairs.push((normalize_percent(name), value));
            }
            // Stable: a name's repeated values keep their order.
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            for (i, (name, value)) in pairs.iter().enumerate() {
                out.push(if i == 0 { '?' } else { '&' });
                out.push_str(name);
                if let Some(value) = value {
                    out.push('=');
                    out.push_str(value);
                }
            }
        }
        out
    }

    /// The URL as it may be stored or logged: credential and excluded parameters keep their
    /// place and name, their value becomes its digest; user information (a password in the
    /// URL) and the fragment are removed.
    pub(crate) fn redacted_url(&self, url: &Url) -> Url {
        let mut url = url.clone();
        if !url.username().is_empty() || url.password().is_some() {
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        if let Some(query) = url.query() {
            if query
                .split('&')
                .any(|p| self.param(p.split('=').next().unwrap_or("")).0 != Param::Plain)
            {
                let redacted: Vec<String> = query
                    .split('&')
                    .map(|p| {
                        let (name, value) = p.split_once('=').unwrap_or((p, ""));
                        match self.param(name) {
                            (Param::Plain, _) => p.to_string(),
                            (_, canonical) => {
                                let value = decode_component(value);
                                format!("{name}={}", self.tag(&canonical, &value))
                            }
                        }
                    })
                    .collect();
                url.set_query(Some(&redacted.join("&")));
            }
        }
        url.set_fragment(None);
        url
    }

    /// A copy of `headers` with every secret value replaced by its digest (presence is kept:
    /// HTTP rules look at whether `Authorization` was sent).
    pub(crate) fn redacted_headers(&self, headers: &HeaderMap) -> HeaderMap {
        let mut out = headers.clone();
        self.redact_in_place(&mut out);
        out
    }

    pub(crate) fn redact_in_place(&self, headers: &mut HeaderMap) {
        for name in self.credential_headers.iter().chain(&self.excluded_headers) {
            let tags: Vec<HeaderValue> = headers
                .get_all(name)
                .iter()
                .filter_map(|v| HeaderValue::try_from(self.tag(name.as_str(), v.as_bytes())).ok())
                .collect();
            if tags.is_empty() {
                continue;
            }
            headers.remove(name);
            for tag in tags {
                headers.append(name.clone(), tag);
            }
        }
    }

    /// `text` with every occurrence of each of `urls` replaced by its redacted form, and every
    /// secret those URLs carry (credential and excluded parameter values, raw and decoded, and
    /// user information) replaced by its digest wherever else it appears: for messages written
    /// by others (reqwest's errors carry the full URL) before they reach a log. Values shorter
    /// than four characters are left alone: replacing them would mangle the message and they
    /// protect nothing.
    pub(crate) fn scrub(&self, text: &str, urls: &[&Url]) -> String {
        let mut out = text.to_owned();
        for url in urls {
            let raw = url.as_str();
            if !raw.is_empty() && out.contains(raw) {
                out = out.replace(raw, self.redacted_url(url).as_str());
            }
            let mut secrets: Vec<(String, String)> = Vec::new();
            for pair in url.query().unwrap_or("").split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                if let (Param::Credential | Param::Excluded, canonical) = self.param(name) {
                    let decoded = decode_component(value);
                    let tag = self.tag(&canonical, &decoded);
                    secrets.push((value.to_owned(), tag.clone()));
                    secrets.push((String::from_utf8_lossy(&decoded).into_owned(), tag));
                }
            }
            for part in [url.username(), url.password().unwrap_or("")] {
                secrets.push((part.to_owned(), self.tag("userinfo", part.as_bytes())));
            }
            for (secret, tag) in secrets {
                if secret.len() >= 4 && out.contains(&secret) {
                    out = out.replace(&secret, &tag);
                }
            }
        }
        out
    }
}

/// The user name and password of a URL, when it has any.
fn userinfo(url: &Url) -> Option<String> {
    (!url.username().is_empty() || url.password().is_some())
        .then(|| format!("{}:{}", url.username(), url.password().unwrap_or("")))
}

/// The bytes a query parameter name or value stands for (`%XX` escapes and `+` decoded), for
/// comparison and digests. Bytes, not text: two values that are not UTF-8 must not become the
/// same replacement character.
fn decode_component(raw: &str) -> Vec<u8> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).collect()
}

/// RFC 3986 §6.2.2.1–2: percent-encoded unreserved characters are decoded, and the hex digits
/// of the escapes that remain are upper-cased, so equivalent spellings give one key.
fn normalize_percent(s: &str) -> Cow<'_, str> {
    if !s.contains('%') {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        // Both digits must be hex: `%+1` is no escape (`from_str_radix` would take the sign).
        let escape = (bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit())
        .then(|| {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            u8::from_str_radix(hex, 16).ok()
        })
        .flatten();
        match escape {
            Some(b) if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => {
                out.push(b as char);
                i += 3;
            }
            Some(b) => {
                out.push_str(&format!("%{b:02X}"));
                i += 3;
            }
            None => {
                // `i` is always on a character boundary: escapes are ASCII, and other
                // characters are copied whole.
                let ch_len = utf8_len(bytes[i]);
                out.push_str(&s[i..i + ch_len]);
                i += ch_len;
            }
        }
    }
    Cow::Owned(out)
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7F => 1,
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
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
        // Computed independently (SHA-256 over 8-byte big-endian length-prefixed fields, and
        // HMAC-SHA256 with the built-in redaction key, in Python). These digests are the
        // on-table identity of entries: a change here orphans every stored response, so it must
        // be deliberate (and bump the key version string).
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
        assert_eq!(
            rules.tag("Authorization", b"Bearer t1"),
            "REDACTED-7e96a343f4e322e2a03907e6dca3d836"
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
        let red = rules.redacted_url(&Url::parse("https://e.com/p?api_key=alice").unwrap());
        assert!(!red.as_str().contains("alice"));
    }

    #[test]
    fn excluded_parameters_leave_the_key_and_are_redacted() {
        let mut rules = KeyRules::default();
        rules.set_excluded(["Tracking_ID".to_string()]);
        let k = |url: &str| key(&rules, Method::GET, url, &[]);
        assert_eq!(
            k("https://e.com/p?q=1&tracking_id=1111"),
            k("https://e.com/p?TRACKING_ID=2222&q=1")
        );
        assert_eq!(
            k("https://e.com/p?q=1&tracking_id=1111"),
            k("https://e.com/p?q=1")
        );
        let red = rules.redacted_url(&Url::parse("https://e.com/p?q=1&tracking_id=1111").unwrap());
        assert!(!red.as_str().contains("1111"));
    }

    /// Attack: secrets in every place a URL or header travels. Redaction keeps no secret and
    /// keeps two secrets apart (a constant would make Vary and coalescing confuse callers).
    #[test]
    fn redaction_is_a_keyed_digest_that_keeps_secrets_apart() {
        let rules = KeyRules::default();
        let url = Url::parse(
            "https://u:pw-secret@e.com/p?q=1&api_key=SECRET-A&Access_Token=TOKEN-A#frag",
        )
        .unwrap();
        let red = rules.redacted_url(&url);
        let text = red.as_str();
        for secret in ["pw-secret", "SECRET-A", "TOKEN-A", "frag", "u:"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.starts_with("https://e.com/p?q=1&api_key=REDACTED-"));
        let other =
            rules.redacted_url(&Url::parse("https://e.com/p?q=1&api_key=SECRET-B").unwrap());
        assert_ne!(
            red.query_pairs().find(|(n, _)| n == "api_key"),
            other.query_pairs().find(|(n, _)| n == "api_key")
        );

        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("SECRET"));
        headers.append("cookie", HeaderValue::from_static("a=SECRET1"));
        headers.append("cookie", HeaderValue::from_static("b=SECRET2"));
        headers.insert("authorization", HeaderValue::from_static("Bearer SECRET"));
        headers.insert("accept", HeaderValue::from_static("text/plain"));
        let red = rules.redacted_headers(&headers);
        for (name, value) in &red {
            if name != "accept" {
                let v = value.to_str().unwrap();
                assert!(
                    v.starts_with("REDACTED-") && !v.contains("SECRET"),
                    "{name}: {v}"
                );
            }
        }
        assert_eq!(red.get_all("cookie").iter().count(), 2);
        assert_eq!(red["accept"], "text/plain");
        let mut other = headers.clone();
        other.insert("x-api-key", HeaderValue::from_static("OTHER"));
        assert_ne!(
            red["x-api-key"],
            rules.redacted_headers(&other)["x-api-key"]
        );

        // Another redaction key gives other digests.
        let mut keyed = KeyRules::default();
        keyed.set_redaction_key(b"a secret of our own");
        assert_ne!(
            keyed.redacted_headers(&headers)["x-api-key"],
            red["x-api-key"]
        );
    }

    #[test]
    fn scrub_removes_secrets_from_text_written_by_others() {
        let rules = KeyRules::default();
        let url = Url::parse("https://user:hunter22@e.com/p?api_key=KEY-123456&q=1").unwrap();
        let text =
            format!("error sending request for url ({url}): api_key was KEY-123456, pw hunter22");
        let out = rules.scrub(&text, &[&url]);
        for secret in ["KEY-123456", "hunter22"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("https://e.com/p?api_key=REDACTED-"));
    }

    #[test]
    fn repeated_values_keep_their_order_and_equivalent_escapes_are_one_key() {
        let rules = KeyRules::default();
        let k = |url: &str| key(&rules, Method::GET, url, &[]);
        assert_ne!(k("https://e.com/p?a=1&a=2"), k("https://e.com/p?a=2&a=1"));
        assert_eq!(
            k("https://e.com/p?b=0&a=1&a=2"),
            k("https://e.com/p?a=1&b=0&a=2")
        );
        assert_eq!(k("https://e.com/%7Euser"), k("https://e.com/~user"));
        assert_eq!(k("https://e.com/%7euser"), k("https://e.com/~user"));
        assert_eq!(k("https://e.com/p?x=%7E"), k("https://e.com/p?x=~"));
        assert_eq!(k("https://e.com/a%2fb"), k("https://e.com/a%2Fb"));
        assert_ne!(
            k("https://e.com/a%2Fb"),
            k("https://e.com/a/b"),
            "a reserved escape stays"
        );
        assert_ne!(k("https://e.com/p?a"), k("https://e.com/p?a="));
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

        /// Distinct names: the order of one name's repeated values is significant.
        fn params() -> impl Strategy<Value = Vec<(String, String)>> {
            proptest::collection::btree_map("[a-z]{1,6}", "[a-zA-Z0-9]{0,6}", 0..8)
                .prop_map(|m| m.into_iter().collect())
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
                let b = format!("HTTPS://{shown_host}.com:443{path}?{}#fragment", query(&shuffled));
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
