//! Redaction: a secret replaced by a keyed digest of it wherever the cache stores or logs it.
//!
//! One [`Redactor`] owns everything redaction needs — the HMAC key and the names of the
//! credential and excluded parameters — so what is stored, what is logged and what enters a
//! key all agree on which values are secret and on their digests. The middleware redacts with
//! it; [`KeyRules`](super::KeyRules) share the same one to digest credentials into keys.
//!
//! The digest is keyed, and the key decides what the digest protects. The built-in key keeps
//! secrets out of the table in clear and keeps two different secrets apart (they never share an
//! entry); but it ships with the crate, so anyone who can read the table can compute the
//! digest of a guessed secret (a Basic password, a short API key) offline and look for it. A
//! deployment rules that out with a key of its own, set in code
//! ([`redaction_key`](crate::CacheMiddlewareBuilder::redaction_key)) or, without a code change,
//! in [`REDACTION_KEY_ENV`]; the key set in code wins.

use std::ffi::OsString;
use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use url::Url;

/// The prefix of the value stored in place of a secret; `-` and the secret's keyed digest
/// follow (HMAC-SHA256 with the redaction key, its first 16 bytes in hex).
pub const REDACTED: &str = "REDACTED";

/// requests-cache's default credential parameters: credentials commonly passed as query
/// parameters or headers. Matched case-insensitively.
pub const DEFAULT_CREDENTIAL_PARAMETERS: &[&str] =
    &["Authorization", "X-API-KEY", "access_token", "api_key"];

/// The environment variable a deployment sets its redaction key in, read by
/// [`CacheMiddlewareBuilder::build`](crate::CacheMiddlewareBuilder::build) when no key is set
/// in code, and by the command-line tool. Its value, byte for byte, is the key (nothing is
/// trimmed or decoded); an empty value counts as unset.
pub const REDACTION_KEY_ENV: &str = "REQWEST_DYNAMODB_CACHE_REDACTION_KEY";

/// Request headers that always carry the caller's identity.
const IDENTITY_HEADERS: [HeaderName; 3] = [
    http::header::AUTHORIZATION,
    http::header::PROXY_AUTHORIZATION,
    http::header::COOKIE,
];

/// The built-in redaction key, used when the deployment gives none, in code or in
/// [`REDACTION_KEY_ENV`].
const DEFAULT_REDACTION_KEY: &[u8] = b"reqwest-dynamodb-cache/redaction/1";

/// The redaction key a deployment gives in [`REDACTION_KEY_ENV`], from the variable's value
/// (`std::env::var_os`): its bytes, or none when it is unset or empty. An empty variable is
/// what a deployment whose secret failed to load often gets: it is no key worth having, and it
/// is said in a warning rather than used.
pub(crate) fn key_from_env(value: Option<OsString>) -> Option<Vec<u8>> {
    let key = value?.into_encoded_bytes();
    if key.is_empty() {
        tracing::warn!("{REDACTION_KEY_ENV} is empty: the built-in redaction key is used");
        return None;
    }
    Some(key)
}

/// What a query parameter is to the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Param {
    Plain,
    Credential,
    Excluded,
}

/// Replaces secrets by their keyed digest: in URLs and request headers that are stored or
/// logged, in text written by others, and (through [`tag`](Self::tag)) in keys.
#[derive(Clone)]
pub(crate) struct Redactor {
    /// Credential parameter names, lower-cased, and the headers among them (with the identity
    /// headers, which are always credentials).
    credential_names: Vec<String>,
    credential_headers: Vec<HeaderName>,
    /// Excluded parameter names, lower-cased, and the headers among them.
    excluded_names: Vec<String>,
    excluded_headers: Vec<HeaderName>,
    hmac: Hmac<Sha256>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The redaction key is a secret: never printed.
        f.debug_struct("Redactor")
            .field("credential_names", &self.credential_names)
            .field("excluded_names", &self.excluded_names)
            .finish_non_exhaustive()
    }
}

impl Default for Redactor {
    /// The built-in key, requests-cache's credential parameters, no excluded parameters.
    fn default() -> Self {
        let mut redactor = Redactor {
            credential_names: Vec::new(),
            credential_headers: Vec::new(),
            excluded_names: Vec::new(),
            excluded_headers: Vec::new(),
            hmac: hmac_with(DEFAULT_REDACTION_KEY),
        };
        redactor.set_credentials(DEFAULT_CREDENTIAL_PARAMETERS.iter().map(|s| s.to_string()));
        redactor
    }
}

fn hmac_with(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
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

impl Redactor {
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

    /// The names given as both credential and excluded parameters (or headers): they are
    /// credentials.
    pub(crate) fn overlap(&self) -> Vec<&str> {
        let headers = self
            .excluded_headers
            .iter()
            .filter(|h| self.credential_headers.contains(h));
        let names = self
            .excluded_names
            .iter()
            .filter(|n| self.credential_names.contains(n));
        let mut both: Vec<&str> = names
            .map(String::as_str)
            .chain(headers.map(HeaderName::as_str))
            .collect();
        both.sort_unstable();
        both.dedup();
        both
    }

    pub(crate) fn set_key(&mut self, key: &[u8]) {
        self.hmac = hmac_with(key);
    }

    /// The credential headers, identity headers included: their values enter the key.
    pub(super) fn credential_headers(&self) -> &[HeaderName] {
        &self.credential_headers
    }

    /// What a query parameter is, and its canonical name (decoded, lower-cased), which its
    /// digest is keyed by: `api%5Fkey` and `API_KEY` are one name.
    pub(super) fn param(&self, raw_name: &str) -> (Param, String) {
        let name = String::from_utf8_lossy(&decode_component(raw_name)).to_ascii_lowercase();
        // A name in both lists is a credential: listing an API key among the ignored
        // parameters (a requests-cache habit) must not make callers with different keys share.
        let kind = if self.credential_names.contains(&name) {
            Param::Credential
        } else if self.excluded_names.contains(&name) {
            Param::Excluded
        } else {
            Param::Plain
        };
        (kind, name)
    }

    /// The keyed digest that stands for a secret: `REDACTED-` and 128 bits of
    /// HMAC-SHA256(name, value), in hex.
    pub(crate) fn tag(&self, name: &str, value: &[u8]) -> String {
        let mut mac = self.hmac.clone();
        mac.update(&(name.len() as u64).to_be_bytes());
        mac.update(name.to_ascii_lowercase().as_bytes());
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        format!("{REDACTED}-{}", hex::encode(&digest[..16]))
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

/// The bytes a query parameter name or value stands for (`%XX` escapes and `+` decoded), for
/// comparison and digests. Bytes, not text: two values that are not UTF-8 must not become the
/// same replacement character.
pub(super) fn decode_component(raw: &str) -> Vec<u8> {
    let spaced = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_vector() {
        // Computed independently (HMAC-SHA256 with the built-in redaction key, in Python). The
        // digest is part of the on-table identity of entries whose requests carry credentials:
        // a change here orphans them, so it must be deliberate.
        assert_eq!(
            Redactor::default().tag("Authorization", b"Bearer t1"),
            "REDACTED-7e96a343f4e322e2a03907e6dca3d836"
        );
    }

    #[test]
    fn an_unset_or_empty_variable_gives_no_key_and_a_set_one_its_bytes() {
        assert_eq!(key_from_env(None), None);
        assert_eq!(key_from_env(Some("".into())), None);
        assert_eq!(
            key_from_env(Some(" key with spaces\n".into())),
            Some(b" key with spaces\n".to_vec())
        );
    }

    /// Attack: secrets in every place a URL or header travels. Redaction keeps no secret and
    /// keeps two secrets apart (a constant would make Vary and coalescing confuse callers).
    #[test]
    fn redaction_is_a_keyed_digest_that_keeps_secrets_apart() {
        let redactor = Redactor::default();
        let url = Url::parse(
            "https://u:pw-secret@e.com/p?q=1&api_key=SECRET-A&Access_Token=TOKEN-A#frag",
        )
        .unwrap();
        let red = redactor.redacted_url(&url);
        let text = red.as_str();
        for secret in ["pw-secret", "SECRET-A", "TOKEN-A", "frag", "u:"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.starts_with("https://e.com/p?q=1&api_key=REDACTED-"));
        let other =
            redactor.redacted_url(&Url::parse("https://e.com/p?q=1&api_key=SECRET-B").unwrap());
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
        let red = redactor.redacted_headers(&headers);
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
            redactor.redacted_headers(&other)["x-api-key"]
        );

        // Another redaction key gives other digests.
        let mut keyed = Redactor::default();
        keyed.set_key(b"a secret of our own");
        assert_ne!(
            keyed.redacted_headers(&headers)["x-api-key"],
            red["x-api-key"]
        );
    }

    #[test]
    fn scrub_removes_secrets_from_text_written_by_others() {
        let redactor = Redactor::default();
        let url = Url::parse("https://user:hunter22@e.com/p?api_key=KEY-123456&q=1").unwrap();
        let text =
            format!("error sending request for url ({url}): api_key was KEY-123456, pw hunter22");
        let out = redactor.scrub(&text, &[&url]);
        for secret in ["KEY-123456", "hunter22"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains("https://e.com/p?api_key=REDACTED-"));
    }
}
