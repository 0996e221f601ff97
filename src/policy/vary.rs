//! `Vary` (RFC 9111 §4.1): the fields a stored response was selected by, and the forms of those
//! fields that select the same response. http-cache-semantics compares a Vary-named field's
//! value exactly, so both the stored request's fields and the presented request's are
//! normalized the same way before it compares them.

use http::{header, HeaderMap, HeaderName, HeaderValue};

use crate::fields::list;

/// The field names a response's `Vary` lists, lower-cased. A member that is not a field name
/// (names are tokens: not `"x-user"`, `a b`, `x;q=1`, nor a line that is not text) reads as
/// `*`: nothing can be shown to match it, so it selects nothing, where skipping it would let a
/// request with any value of the field it meant to name be served this response.
pub(crate) fn vary_names(headers: &HeaderMap) -> impl Iterator<Item = String> + '_ {
    headers
        .get_all(header::VARY)
        .iter()
        .flat_map(|v| match v.to_str() {
            Ok(line) => list::members(line)
                .map(|name| match names_a_field(name) {
                    true => name.to_ascii_lowercase(),
                    false => "*".to_owned(),
                })
                .collect::<Vec<_>>(),
            Err(_) => vec!["*".to_owned()],
        })
}

/// Whether every member of a `Vary` line, as sent, is read as itself by [`vary_names`]: a
/// field name or `*`.
pub(crate) fn names_fields(line: &HeaderValue) -> bool {
    line.to_str()
        .is_ok_and(|line| list::members(line).all(|m| m == "*" || names_a_field(m)))
}

fn names_a_field(member: &str) -> bool {
    HeaderName::try_from(member).is_ok()
}

/// RFC 9111 §4.1: before Vary-named request fields are compared, several field lines are
/// combined into one, and whitespace around the commas of a list is not significant. The
/// policy compares one value exactly, so both sides are normalized this way first.
pub(crate) fn normalize_vary_fields(request: &mut HeaderMap, response: &HeaderMap) {
    for name in vary_names(response) {
        let Ok(name) = HeaderName::try_from(name.as_str()) else {
            continue;
        };
        let values: Vec<&[u8]> = request
            .get_all(&name)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        if values.is_empty() {
            continue;
        }
        let mut joined: Vec<u8> = Vec::new();
        let items = values
            .iter()
            .flat_map(|v| list::member_ranges(v, true).map(move |r| &v[r]));
        for item in items {
            if !joined.is_empty() {
                joined.extend_from_slice(b", ");
            }
            joined.extend_from_slice(item);
        }
        if name == header::ACCEPT_LANGUAGE {
            joined = normalize_languages(&joined);
        }
        if let Ok(v) = HeaderValue::from_bytes(&joined) {
            request.insert(name, v);
        }
    }
}

/// Content negotiation the cache can replay (cache-tests `vary-normalise-lang-select`): when a
/// response varies on `Accept-Language` and states one `Content-Language`, a request whose
/// single most preferred language (highest `q`, above zero) is that language would be given
/// that same representation by the origin, which has it. Such a request's `Accept-Language`
/// is taken as matching the stored request's. Nothing else about the request is relaxed: any
/// other field `Vary` names must still match.
pub(crate) fn select_language(request: &mut HeaderMap, response: &HeaderMap, stored: &HeaderMap) {
    if !vary_names(response).any(|n| n == "accept-language") {
        return;
    }
    let mut served = response.get_all(header::CONTENT_LANGUAGE).iter();
    let (Some(language), None) = (served.next(), served.next()) else {
        return;
    };
    let Ok(language) = language.to_str() else {
        return;
    };
    let language = language.trim();
    if language.is_empty() || language.contains(',') {
        return;
    }
    let Some(asked) = request
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
    else {
        return;
    };
    if !top_preference(asked).is_some_and(|top| top.eq_ignore_ascii_case(language)) {
        return;
    }
    match stored.get(header::ACCEPT_LANGUAGE) {
        Some(v) => {
            request.insert(header::ACCEPT_LANGUAGE, v.clone());
        }
        None => {
            request.remove(header::ACCEPT_LANGUAGE);
        }
    }
}

/// The one language range of `accept` with the highest weight, when exactly one has it and it
/// is above zero and not a wildcard.
fn top_preference(accept: &str) -> Option<&str> {
    let mut best: Option<(u32, &str)> = None;
    let mut tied = false;
    for item in list::members(accept) {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or("").trim();
        if range.is_empty() {
            continue;
        }
        // A weight that does not parse leaves the preferences unclear: select nothing.
        let q = match parts
            .filter_map(|p| {
                let p = p.trim();
                p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
            })
            .map(|q| q.trim().parse::<f32>().ok().filter(|q| q.is_finite()))
            .next()
        {
            None => 1.0,
            Some(Some(q)) => q,
            Some(None) => return None,
        };
        let q = (q.clamp(0.0, 1.0) * 1000.0) as u32;
        match best {
            Some((b, _)) if q < b => {}
            Some((b, _)) if q == b => tied = true,
            _ => {
                best = Some((q, range));
                tied = false;
            }
        }
    }
    match best {
        Some((q, range)) if q > 0 && !tied && range != "*" => Some(range),
        _ => None,
    }
}

/// `Accept-Language` as a set of preferences: language ranges are case-insensitive
/// (RFC 4647 §2.1), and without weights their order expresses nothing a server must honour
/// (RFC 9110 §12.5.4 ranks by `q`), so ranges are lower-cased and sorted by weight, then by
/// name. Two requests that ask for the same languages select the same variant
/// (cache-tests `vary-normalise-lang-order`, `-case`).
fn normalize_languages(value: &[u8]) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(value) else {
        return value.to_vec();
    };
    let mut ranges: Vec<(u32, String)> = list::members(text)
        .map(str::to_ascii_lowercase)
        .map(|item| {
            let q = item
                .split(';')
                .skip(1)
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            ((q.clamp(0.0, 1.0) * 1000.0) as u32, item.replace(' ', ""))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    ranges
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Vec<_>>()
        .join(", ")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use http::{HeaderMap, StatusCode};

    use super::*;
    use crate::policy::testing::*;

    /// cache-tests `vary-normalise-lang-select`: the single most preferred language decides.
    #[test]
    fn a_request_that_most_prefers_the_stored_language_is_served_it() {
        assert_eq!(top_preference("fr;q=0.5, de;q=1.0"), Some("de"));
        assert_eq!(top_preference("de"), Some("de"));
        assert_eq!(top_preference("fr, de"), None, "a tie");
        assert_eq!(top_preference("de;q=0"), None);
        assert_eq!(top_preference("*"), None);
        assert_eq!(
            top_preference("fr;q=abc, de;q=0.9"),
            None,
            "a weight that does not parse"
        );
        assert_eq!(top_preference("DE ; Q=1"), Some("DE"));
        assert_eq!(top_preference(""), None);
        let response = headers(&[("vary", "Accept-Language"), ("content-language", "de")]);
        let stored = headers(&[("accept-language", "en, de")]);
        let mut request = headers(&[("accept-language", "fr;q=0.5, de;q=1.0")]);
        select_language(&mut request, &response, &stored);
        assert_eq!(request["accept-language"], "en, de");
        // Another top preference, two languages served, or no Vary on it: left alone.
        for (asked, served, vary) in [
            ("fr", "de", "Accept-Language"),
            ("de", "de, en", "Accept-Language"),
            ("de", "de", "Accept-Encoding"),
        ] {
            let response = headers(&[("vary", vary), ("content-language", served)]);
            let mut request = headers(&[("accept-language", asked)]);
            select_language(&mut request, &response, &stored);
            assert_eq!(request["accept-language"], asked);
        }
        // The stored request named no language: neither does the matching one.
        let mut request = headers(&[("accept-language", "de")]);
        select_language(&mut request, &response, &HeaderMap::new());
        assert!(!request.contains_key("accept-language"));
    }

    /// Accept-Language is normalized for Vary matching: case and unweighted order do not
    /// select another variant; weights do (`vary-normalise-lang-order`, `-case`).
    #[test]
    fn accept_language_is_normalized_for_vary() {
        let vary = headers(&[("vary", "Accept-Language")]);
        let norm = |v: &str| {
            let mut h = headers(&[("accept-language", v)]);
            normalize_vary_fields(&mut h, &vary);
            h["accept-language"].to_str().unwrap().to_owned()
        };
        assert_eq!(norm("en, de"), norm("de, en"));
        assert_eq!(norm("en, de"), norm("EN, De"));
        assert_eq!(norm("en;q=0.5, de"), norm("de,en; q=0.5"));
        assert_ne!(norm("en;q=0.5, de"), norm("de;q=0.5, en"));
    }

    #[test]
    fn vary_star_is_never_stored_and_vary_fields_are_normalized() {
        let now = UNIX_EPOCH + T0;
        let h = headers(&[("cache-control", "max-age=60"), ("vary", "*")]);
        assert!(rules(None)
            .plan_default(&get(), StatusCode::OK, &h, now)
            .is_none());
        let mut req = headers(&[("accept", "a ,b"), ("accept", " c")]);
        normalize_vary_fields(&mut req, &headers(&[("vary", "Accept")]));
        assert_eq!(req["accept"], "a, b, c");
    }
}
