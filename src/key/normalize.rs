//! URL normalization: the URL as it enters the key.
//!
//! RFC 3986 §6.2.2 lets equivalent spellings of one URL be recognized as one; servers treat
//! them as one, so the cache does too, and they share a key. What the key must not see is
//! taken out here as well: user information and fragment, excluded parameters, and the values
//! of credential parameters, which enter as their digest (from the rules'
//! [`Redactor`](super::redaction::Redactor)).

use std::borrow::Cow;

use url::Url;

use super::redaction::{decode_component, Param};
use super::KeyRules;

impl KeyRules {
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
            // Empty segments are kept (as parameters with an empty name): RFC 3986 §6.2.3,
            // a delimiter whose component is empty is not removed, since the origin receives
            // `/p?`, `?a=1&` and `?a=1&&b=2` as other request targets than `/p`, `?a=1` and
            // `?a=1&b=2`.
            for pair in query.split('&') {
                let (name, value) = match pair.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (pair, None),
                };
                let value = match self.redactor.param(name) {
                    (Param::Plain, _) => value.map(normalize_percent),
                    (Param::Excluded, _) => continue,
                    (Param::Credential, _) if !self.credentials_in_key => continue,
                    (Param::Credential, canonical) => {
                        let decoded = decode_component(value.unwrap_or(""));
                        Some(Cow::Owned(self.redactor.tag(&canonical, &decoded)))
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
    use http::Method;

    use super::super::tests::key;
    use super::*;

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

    /// RFC 3986 §6.2.3: an empty query or empty query segments are other request targets.
    #[test]
    fn empty_query_delimiters_stay_apart() {
        let rules = KeyRules::default();
        for (a, b) in [
            ("/p?", "/p"),
            ("/p?a=1&", "/p?a=1"),
            ("/p?a=1&&b=2", "/p?a=1&b=2"),
            ("/p?&a=1", "/p?a=1"),
        ] {
            let url = |path: &str| format!("https://example.com{path}");
            assert_ne!(
                key(&rules, Method::GET, &url(a), &[]),
                key(&rules, Method::GET, &url(b), &[]),
                "{a} and {b}"
            );
        }
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
