//! The RFC 9211 `Cache-Status` response header, opt-in beside the typed
//! [`CacheStatus`](crate::CacheStatus).

use http::{HeaderValue, StatusCode};

use crate::CacheStatus;

/// Why a request went to the origin (RFC 9211 §2.2 `fwd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fwd {
    /// Nothing stored for the URI.
    UriMiss,
    /// Something stored, but for other values of the Vary-named headers.
    VaryMiss,
    /// Stored, but stale.
    Stale,
    /// The request (its mode or directives) demanded it.
    Request,
    /// The method is not cached.
    Method,
    /// The cache was not consulted (a precondition it does not evaluate, unreadable body, store
    /// down).
    Bypass,
}

impl Fwd {
    fn token(self) -> &'static str {
        match self {
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Stale => "stale",
            Fwd::Request => "request",
            Fwd::Method => "method",
            Fwd::Bypass => "bypass",
        }
    }
}

/// What one request's `Cache-Status` entry says.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Report {
    /// Why and with what status the request went to the origin, if it did.
    pub(super) fwd: Option<(Fwd, Option<StatusCode>)>,
    /// Freshness left in seconds (negative when stale) of the response served or stored.
    pub(super) ttl: Option<i64>,
}

/// `name; hit; ttl=…` / `name; fwd=…; fwd-status=…; stored; ttl=…` / `…; detail=…`.
pub(super) fn header(name: &str, status: CacheStatus, report: &Report) -> Option<HeaderValue> {
    let mut out = String::from(name);
    let hit = matches!(
        status,
        CacheStatus::Hit
            | CacheStatus::StaleWhileRevalidate
            | CacheStatus::StaleIfError
            | CacheStatus::Stale
            | CacheStatus::Coalesced
    );
    if hit {
        out.push_str("; hit");
    }
    if let Some((fwd, fwd_status)) = report.fwd {
        out.push_str("; fwd=");
        out.push_str(fwd.token());
        if let Some(s) = fwd_status {
            out.push_str(&format!("; fwd-status={}", s.as_u16()));
        }
    }
    if matches!(status, CacheStatus::Stored | CacheStatus::Revalidated) {
        out.push_str("; stored");
    }
    if status == CacheStatus::Coalesced {
        out.push_str("; collapsed");
    }
    if let Some(ttl) = report.ttl {
        out.push_str(&format!("; ttl={ttl}"));
    }
    let detail = match status {
        CacheStatus::StaleWhileRevalidate => Some("stale-while-revalidate"),
        CacheStatus::StaleIfError => Some("stale-if-error"),
        CacheStatus::Stale => Some("stale"),
        CacheStatus::OnlyIfCachedMiss => Some("only-if-cached"),
        CacheStatus::NotStored(_) => None,
        _ => None,
    };
    if let Some(detail) = detail {
        out.push_str("; detail=");
        out.push_str(detail);
    }
    if let CacheStatus::NotStored(reason) = status {
        out.push_str("; detail=");
        out.push_str(&reason.name().replace('_', "-"));
    }
    HeaderValue::try_from(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reason not to store is the entry's `detail`, hyphenated.
    #[test]
    fn a_reason_not_to_store_is_the_detail() {
        let report = Report {
            fwd: Some((Fwd::UriMiss, Some(StatusCode::OK))),
            ttl: None,
        };
        let reason = crate::NotStored::TooLarge;
        assert_eq!(
            header("c", CacheStatus::NotStored(reason), &report).unwrap(),
            "c; fwd=uri-miss; fwd-status=200; detail=too-large"
        );
        assert_eq!(
            header("c", CacheStatus::StaleIfError, &Report::default()).unwrap(),
            "c; hit; detail=stale-if-error"
        );
    }

    #[test]
    fn entries_read_as_rfc_9211_examples() {
        let h = |s, r| header("c", s, &r).unwrap();
        assert_eq!(
            h(
                CacheStatus::Hit,
                Report {
                    fwd: None,
                    ttl: Some(376)
                }
            ),
            "c; hit; ttl=376"
        );
        assert_eq!(
            h(
                CacheStatus::Stored,
                Report {
                    fwd: Some((Fwd::UriMiss, Some(StatusCode::OK))),
                    ttl: Some(60)
                }
            ),
            "c; fwd=uri-miss; fwd-status=200; stored; ttl=60"
        );
        assert_eq!(
            h(
                CacheStatus::Revalidated,
                Report {
                    fwd: Some((Fwd::Stale, Some(StatusCode::NOT_MODIFIED))),
                    ttl: Some(60)
                }
            ),
            "c; fwd=stale; fwd-status=304; stored; ttl=60"
        );
        assert_eq!(
            h(
                CacheStatus::StaleIfError,
                Report {
                    fwd: Some((Fwd::Stale, Some(StatusCode::SERVICE_UNAVAILABLE))),
                    ttl: Some(-5)
                }
            ),
            "c; hit; fwd=stale; fwd-status=503; ttl=-5; detail=stale-if-error"
        );
        assert_eq!(
            h(
                CacheStatus::Bypassed,
                Report {
                    fwd: Some((Fwd::Method, None)),
                    ttl: None
                }
            ),
            "c; fwd=method"
        );
    }
}
