//! Whether a response may be stored, and until when: HTTP's rules (the plan), the user's
//! (`allowed_statuses`, `filter`), shared mode's cookie rule, and the size the store can hold.
//! Decided from the status and headers, before the body is read.

use std::time::SystemTime;

use reqwest::Response;

use super::lookup::Fill;
use super::request::RequestView;
use super::Inner;
use crate::fields::content_range;
use crate::{policy, ExpireAfter, NotStored};

impl Inner {
    /// The largest copy of a body kept to be stored: the configured one, within what the store can
    /// hold.
    pub(super) fn body_limit(&self) -> usize {
        match self.settings.store.max_body_size() {
            Some(limit) => self.settings.max_body_size.min(limit),
            None => self.settings.max_body_size,
        }
    }

    /// Whether `resp`, fetched for `view`, may be stored, and until when; or why not.
    pub(super) fn storable(
        &self,
        view: &RequestView,
        resp: &Response,
        received: SystemTime,
        fill: &Fill,
    ) -> Result<policy::Plan, NotStored> {
        let status = resp.status();
        // reqwest followed a redirect: the response is another URI's, and the redirect's own
        // fields (a `no-store`, a short lifetime) were never seen. Stored under the request's
        // key it would keep answering after the redirect moved on.
        let keys = &self.settings.keys;
        if resp.url() != &view.url
            && keys.normalized_url(resp.url()) != keys.normalized_url(&view.url)
        {
            return Err(NotStored::Redirected);
        }
        // A partial response (RFC 9111 §3.3) is stored only where nothing is: it never
        // replaces a complete one, nor is it combined with another.
        if status == http::StatusCode::PARTIAL_CONTENT
            && (fill.replaces || content_range(resp.headers()).is_none())
        {
            return Err(NotStored::NotStorable);
        }
        // The answer to a range request is the representation (200) or a part of it (206);
        // anything else (a 416, say) answers that range only and is never stored for the URL.
        if view.range.is_some()
            && !matches!(
                status,
                http::StatusCode::OK | http::StatusCode::PARTIAL_CONTENT
            )
        {
            return Err(NotStored::NotStorable);
        }
        self.plan_for(&view.parts, view.expire_after, resp, received)
    }

    /// The storing rules every stored response passes — HTTP's (the plan), the user's
    /// (`allowed_statuses`, `filter`), shared mode's cookie rule, and the size the store can
    /// hold — and until when it is stored.
    pub(super) fn plan_for(
        &self,
        request: &http::request::Parts,
        expire_after: Option<ExpireAfter>,
        resp: &Response,
        received: SystemTime,
    ) -> Result<policy::Plan, NotStored> {
        let status = resp.status();
        let settings = &self.settings;
        if settings
            .statuses
            .as_ref()
            .is_some_and(|s| !s.contains(&status))
        {
            return Err(NotStored::StatusNotAllowed);
        }
        let plan = settings
            .rules
            .plan(request, status, resp.headers(), received, expire_after);
        let Some(plan) = plan else {
            return Err(NotStored::NotStorable);
        };
        if settings.keeps_cookies_apart() && policy::sets_cookie(resp.headers()) {
            return Err(NotStored::SetCookie);
        }
        if settings.filter.as_ref().is_some_and(|keep| !keep(resp)) {
            return Err(NotStored::Filtered);
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.body_limit() as u64)
        {
            return Err(NotStored::TooLarge);
        }
        Ok(plan)
    }
}
