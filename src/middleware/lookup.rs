//! The lookup: what is stored for a request, and what to do about it, as one [`Decision`].

use http::{header, Method};
use http_cache_semantics::{BeforeRequest, CachePolicy};

use super::cache_status::Fwd;
use super::request::{Budget, RequestView};
use super::store_calls::Lookup;
use super::{new_revision, Inner};
use crate::policy;
use crate::{CacheKey, CacheMode, StoredResponse};

/// A stored response that matches the request, with its policy for this request.
pub(super) struct Candidate {
    /// Where it is stored.
    pub(super) key: CacheKey,
    pub(super) entry: StoredResponse,
    pub(super) policy: CachePolicy,
    /// Fresh for this request (its own directives included).
    pub(super) fresh: bool,
}

/// Why a stored entry is not a candidate for the request.
enum Mismatch {
    /// It is another variant; the names its Vary lists.
    Variant(Vec<String>),
    /// It is a stored part that does not hold what the request asks for (boxed: the rare
    /// case should not make every lookup's result larger).
    Partial(Box<StoredResponse>),
}

/// How a stored response's policy judges the request presented now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Judgement {
    Fresh,
    Stale,
    /// Another request's response: URI, method or Vary-named fields differ.
    NoMatch,
    /// A stored partial response (206) that does not hold what this request asks for: only a
    /// GET whose every range lies inside it may be answered from it.
    Partial,
}

/// Where a response fetched for this request is written, and why the request went to the
/// origin.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fill {
    /// The generation of the URL's primary entry, when there is one.
    pub(super) generation: Option<u64>,
    /// The primary entry holds another variant: a varying response goes under its own key.
    pub(super) other_variant: bool,
    /// The store answered the lookup; `false` skips the write (the store is failing).
    pub(super) store_ok: bool,
    /// Something may be stored under the key: a response that may not be stored must then
    /// remove it, or the next request would be served the outdated one.
    pub(super) replaces: bool,
    pub(super) fwd: Fwd,
    /// The fill runs in a background task (a refresh): its write is made inline, since
    /// [`flush`](crate::CacheMiddleware::flush) waits for that task and not for work it queues.
    pub(super) in_background: bool,
    /// The revision what is fetched will be stored at, taken before the origin is asked: a
    /// response to a request that started before an invalidation is older than it, and the
    /// store refuses it.
    pub(super) revision: u64,
}

impl Fill {
    fn new(fwd: Fwd) -> Self {
        Fill {
            generation: None,
            other_variant: false,
            store_ok: true,
            replaces: false,
            fwd,
            in_background: false,
            revision: new_revision(),
        }
    }
}

/// What the cache does with a request, decided from what is stored (as http-cache-semantics'
/// `BeforeRequest`, with the modes, stale windows and variants it leaves to us).
// Short-lived: boxing the candidate would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Decision {
    /// Fresh for this request: serve it.
    Fresh(Candidate),
    /// Stale, and the request's mode allows any stored response: serve it as stale.
    Stale(Candidate),
    /// Stale within its stale-while-revalidate window: serve it, refresh it in the background.
    StaleWhileRevalidate(Candidate),
    /// Stale (or the request demands validation): ask the origin, conditionally when the
    /// candidate has validators.
    Revalidate(Candidate, Fill),
    /// Nothing usable is stored: ask the origin.
    Miss(Fill),
    /// Part of the representation is stored (a 206): ask the origin for the rest, and combine
    /// (RFC 9111 §3.4).
    Complete(StoredResponse, Fill),
    /// Only a stored response would do, and there is none that can be used: 504.
    OnlyIfCachedMiss,
}

impl Inner {
    /// Looks the request up and decides.
    pub(super) async fn decide(&self, view: &RequestView, budget: &Budget) -> Decision {
        let decision = self.lookup(view, budget).await;
        let only_if_cached = view.mode == CacheMode::OnlyIfCached || view.directives.only_if_cached;
        match decision {
            Decision::Revalidate(..) | Decision::Miss(_) | Decision::Complete(..)
                if only_if_cached =>
            {
                Decision::OnlyIfCachedMiss
            }
            other => other,
        }
    }

    async fn lookup(&self, view: &RequestView, budget: &Budget) -> Decision {
        if view.mode == CacheMode::Reload {
            return Decision::Miss(Fill {
                replaces: true,
                ..Fill::new(Fwd::Request)
            });
        }
        // Several ranges are cut from the body in memory; one is read from the store by itself.
        let whole = view.range.as_deref().is_some_and(|r| r.contains(','));
        let entry = match self.get(&view.key, budget, whole).await {
            Lookup::Found(entry) if self.usable(&entry, view) => entry,
            Lookup::Fault => {
                return Decision::Miss(Fill {
                    store_ok: false,
                    ..Fill::new(Fwd::Bypass)
                })
            }
            Lookup::Found(_) | Lookup::Absent => {
                return match self.head_from_get(view, budget).await {
                    Some(decision) => decision,
                    None => Decision::Miss(Fill::new(Fwd::UriMiss)),
                }
            }
        };
        let mut fill = Fill {
            generation: Some(entry.generation),
            replaces: true,
            ..Fill::new(Fwd::UriMiss)
        };
        let candidate = match self.candidate(view.key.clone(), entry, view) {
            Ok(candidate) => candidate,
            Err(Mismatch::Partial(part)) => {
                // A stored part this request cannot be answered from: a plain GET may still
                // be, once the rest is fetched (RFC 9111 §3.4).
                if *view.method() == Method::GET && view.range.is_none() {
                    return Decision::Complete(*part, fill);
                }
                return Decision::Miss(fill);
            }
            Err(Mismatch::Variant(names)) => {
                // RFC 9111 §4.1: the primary entry holds another variant; this request's
                // variant, if stored, has a key of its own.
                fill.fwd = Fwd::VaryMiss;
                if names.is_empty() || names.iter().any(|n| n == "*") {
                    return Decision::Miss(fill);
                }
                fill.other_variant = true;
                let key = self.settings.keys.variant_key(
                    &view.key,
                    names.iter().map(String::as_str),
                    &policy::stored_request_headers(&view.parts.headers, &vary_headers(&names)),
                );
                let entry = match self.get(&key, budget, whole).await {
                    Lookup::Found(e)
                        if self.usable(&e, view) && Some(e.generation) == fill.generation =>
                    {
                        e
                    }
                    Lookup::Fault => {
                        fill.store_ok = false;
                        return Decision::Miss(fill);
                    }
                    _ => return Decision::Miss(fill),
                };
                match self.candidate(key, entry, view) {
                    Ok(candidate) => candidate,
                    Err(_) => return Decision::Miss(fill),
                }
            }
        };
        match self.classify(candidate, fill, view) {
            // A body still in the store (S3) that the origin may confirm: read now, so that the
            // answer to a 304 and its write both use this copy (the write replaces the object,
            // and deletes the one a stream would still be reading).
            Decision::Revalidate(mut c, fill) if c.entry.is_body_in_store() => {
                match self.call(budget, c.entry.clone().into_whole()).await {
                    Ok(whole) => {
                        c.entry = whole;
                        Decision::Revalidate(c, fill)
                    }
                    Err(e) => {
                        tracing::warn!(key = %c.key, error = %e, "a stored body could not be read for revalidation; fetched again");
                        Decision::Miss(fill)
                    }
                }
            }
            decision => decision,
        }
    }

    /// `entry` with its policy for this request, or the Vary-named fields when it is another
    /// variant.
    fn candidate(
        &self,
        key: CacheKey,
        entry: StoredResponse,
        view: &RequestView,
    ) -> Result<Candidate, Mismatch> {
        let (policy, judgement) = self.judge(&entry, view, view.method());
        match judgement {
            Judgement::NoMatch => Err(Mismatch::Variant(self.selecting_names(&entry.headers))),
            Judgement::Partial => Err(Mismatch::Partial(Box::new(entry))),
            _ => Ok(Candidate {
                key,
                entry,
                policy,
                fresh: judgement == Judgement::Fresh,
            }),
        }
    }

    /// The policy of `entry`, and how it judges the request presented as `method`. The
    /// request's Vary-named fields are normalized first (RFC 9111 §4.1: field lines combined,
    /// whitespace around commas not significant), as they were when the entry was stored —
    /// http-cache-semantics compares one field value exactly.
    pub(super) fn judge(
        &self,
        entry: &StoredResponse,
        view: &RequestView,
        method: &Method,
    ) -> (CachePolicy, Judgement) {
        let presented;
        let parts = if entry.headers.contains_key(header::VARY) || method != view.method() {
            let mut parts = view.parts.clone();
            parts.method = method.clone();
            policy::normalize_vary_fields(&mut parts.headers, &entry.headers);
            policy::select_language(&mut parts.headers, &entry.headers, &entry.request_headers);
            presented = parts;
            &presented
        } else {
            &view.parts
        };
        let policy = self.settings.rules.policy_of(entry, parts);
        let judgement = if !self.same_match_headers(entry, &view.parts.headers) {
            // Another value of a match header: another variant (see `selecting`).
            Judgement::NoMatch
        } else if let Some(fresh) = policy::plainly_fresh(&policy, entry, parts, view.now) {
            if fresh {
                Judgement::Fresh
            } else {
                Judgement::Stale
            }
        } else {
            match policy.before_request(parts, view.now) {
                BeforeRequest::Fresh(_) => Judgement::Fresh,
                BeforeRequest::Stale { matches: true, .. } => Judgement::Stale,
                BeforeRequest::Stale { matches: false, .. } => Judgement::NoMatch,
            }
        };
        if entry.status == http::StatusCode::PARTIAL_CONTENT && judgement != Judgement::NoMatch {
            let inside = match (crate::fields::content_range(&entry.headers), &view.range) {
                (Some(held), Some(range)) if *method == Method::GET => {
                    super::caller::covers(range, held)
                }
                _ => false,
            };
            if !inside {
                return (policy, Judgement::Partial);
            }
        }
        (policy, judgement)
    }

    /// A matching candidate: serve it, serve it stale, or revalidate it.
    fn classify(&self, c: Candidate, mut fill: Fill, view: &RequestView) -> Decision {
        let fresh = c.fresh;
        match view.mode {
            CacheMode::ForceCache | CacheMode::OnlyIfCached if fresh => Decision::Fresh(c),
            CacheMode::ForceCache | CacheMode::OnlyIfCached => Decision::Stale(c),
            CacheMode::NoCache => {
                fill.fwd = Fwd::Request;
                Decision::Revalidate(c, fill)
            }
            _ if fresh => Decision::Fresh(c),
            _ => {
                let over = view.now.duration_since(c.entry.expires).unwrap_or_default();
                let swr = self
                    .settings
                    .rules
                    .stale_while_revalidate_window(&c.entry.headers);
                if !view.directives.no_stale
                    && !view.directives.only_if_cached
                    && c.policy.is_stale(view.now)
                    && over < swr
                {
                    return Decision::StaleWhileRevalidate(c);
                }
                fill.fwd = Fwd::Stale;
                Decision::Revalidate(c, fill)
            }
        }
    }

    /// RFC 9111 §4.3.5 allows a HEAD to be answered from a stored GET response: a HEAD with
    /// nothing stored under its own key uses a GET's entry that the request's mode lets it
    /// use without contacting the origin (fresh; or stale under `ForceCache`/`OnlyIfCached`).
    async fn head_from_get(&self, view: &RequestView, budget: &Budget) -> Option<Decision> {
        if matches!(view.mode, CacheMode::NoCache | CacheMode::Reload) {
            return None;
        }
        let key = view.head_get_key.clone()?;
        let Lookup::Found(entry) = self.get(&key, budget, false).await else {
            return None;
        };
        if !self.usable(&entry, view) {
            return None;
        }
        let (policy, judgement) = self.judge(&entry, view, &Method::GET);
        let candidate = Candidate {
            key,
            entry,
            policy,
            fresh: judgement == Judgement::Fresh,
        };
        match judgement {
            Judgement::Fresh => Some(Decision::Fresh(candidate)),
            Judgement::Stale
                if matches!(view.mode, CacheMode::ForceCache | CacheMode::OnlyIfCached) =>
            {
                Some(Decision::Stale(candidate))
            }
            Judgement::Stale | Judgement::NoMatch | Judgement::Partial => None,
        }
    }

    /// Whether `entry` is still of use at all: DynamoDB deletes expired items only eventually,
    /// so reads never trust the table to have done it. A stored part that is not the range it
    /// claims (an item written by someone else) is of no use either: it is never served as that
    /// range. Nor, in a shared cache, is an entry it may not share (`private`, or an answer to
    /// `Authorization` that does not say it may be reused: see [`Rules::may_share`]; or one that
    /// sets a cookie, unless `shared_set_cookie` allows it), whoever wrote it.
    ///
    /// [`Rules::may_share`]: crate::policy::Rules::may_share
    fn usable(&self, entry: &StoredResponse, view: &RequestView) -> bool {
        if !policy::is_consistent_part(entry.status, &entry.headers, entry.body_len() as usize) {
            tracing::warn!(key = %view.key, "a stored part is not the range it claims; not served");
            return false;
        }
        let settings = &self.settings;
        let replays_cookie = settings.keeps_cookies_apart() && policy::sets_cookie(&entry.headers);
        if replays_cookie
            || !settings
                .rules
                .may_share(&entry.headers, &entry.request_headers)
        {
            tracing::warn!(key = %view.key, "a stored response this shared cache may not share (private, for an Authorization, or setting a cookie); not served");
            return false;
        }
        entry.retain_until.is_none_or(|t| t > view.now)
    }
}

/// A response header map that names `names` in `Vary`, for the helpers that read Vary from
/// response headers.
fn vary_headers(names: &[String]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    if let Ok(v) = http::HeaderValue::try_from(names.join(", ")) {
        h.insert(header::VARY, v);
    }
    h
}
