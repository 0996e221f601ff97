//! Fixtures shared by the policy's unit tests: header maps, a GET, rules with defaults, and a
//! fixed moment to plan at.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::{ExpireAfter, Plan, Rules};

pub(super) fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::try_from(*k).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

pub(super) fn get() -> http::request::Parts {
    let (mut p, ()) = http::Request::new(()).into_parts();
    p.uri = "https://example.com/".parse().unwrap();
    p
}

pub(super) fn rules(expire_after: Option<ExpireAfter>) -> Rules {
    Rules {
        shared: false,
        expire_after,
        expire_after_urls: Vec::new(),
        revalidation_retention: Duration::from_secs(3600),
        stale_while_revalidate: None,
        stale_if_error: None,
    }
}

impl Rules {
    pub(super) fn plan_default(
        &self,
        request: &http::request::Parts,
        status: StatusCode,
        headers: &HeaderMap,
        received: SystemTime,
    ) -> Option<Plan> {
        self.plan(request, status, headers, received, self.expire_after)
    }
}

pub(super) const T0: Duration = Duration::from_secs(1_800_000_000);

pub(super) fn fresh_for(
    rules: &Rules,
    status: u16,
    pairs: &[(&str, &str)],
    at: Duration,
) -> Option<bool> {
    let h = headers(pairs);
    let received = UNIX_EPOCH + T0;
    let status = StatusCode::from_u16(status).unwrap();
    rules.plan_default(&get(), status, &h, received)?;
    let policy = rules.policy(&get(), status, &h, None, received);
    Some(!policy.is_stale(received + at))
}

pub(super) fn date(secs_after_t0: i64) -> String {
    let t = if secs_after_t0 >= 0 {
        UNIX_EPOCH + T0 + Duration::from_secs(secs_after_t0.unsigned_abs())
    } else {
        UNIX_EPOCH + T0 - Duration::from_secs(secs_after_t0.unsigned_abs())
    };
    httpdate::fmt_http_date(t)
}
