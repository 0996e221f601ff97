//! One request through the cache, and what came back: the `CacheStatus` every response
//! carries, the HTTP status, the body.

use http::HeaderValue;
use reqwest_dynamodb_cache::{CacheMode, CacheStatus, PendingWrite};
use reqwest_middleware::ClientWithMiddleware;

/// What the cache did for `resp` (every response carries a `CacheStatus`).
pub fn status(resp: &reqwest::Response) -> CacheStatus {
    *resp
        .extensions()
        .get::<CacheStatus>()
        .expect("every response carries a CacheStatus")
}

/// A GET with `headers`: what the cache did, and the body.
pub async fn get(
    client: &ClientWithMiddleware,
    url: &str,
    headers: &[(&str, &str)],
) -> (CacheStatus, String) {
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    read(resp).await
}

/// What the cache did for `resp` and its body, read whole: for a response handed out while
/// it was being stored, the outcome of that write (known once the body has been read).
pub async fn read(resp: reqwest::Response) -> (CacheStatus, String) {
    let told = status(&resp);
    let pending = resp.extensions().get::<PendingWrite>().cloned();
    let body = resp.text().await.unwrap();
    // Known once the body has ended, unless the write outlasted the request's store budget.
    (pending.and_then(|p| p.try_outcome()).unwrap_or(told), body)
}

/// A GET with byte-valued headers (not necessarily UTF-8): what the cache did, the HTTP
/// status, the body.
pub async fn ask(
    client: &ClientWithMiddleware,
    url: &str,
    headers: &[(&str, &[u8])],
) -> (CacheStatus, u16, String) {
    let mut req = client.get(url);
    for (k, v) in headers {
        req = req.header(*k, HeaderValue::from_bytes(v).unwrap());
    }
    let resp = req.send().await.unwrap();
    let code = resp.status().as_u16();
    let (s, body) = read(resp).await;
    (s, code, body)
}

/// Sends with a per-request mode; the status and body.
pub trait SendWithMode {
    async fn send_with_mode(self, mode: CacheMode) -> (CacheStatus, String);
}

impl SendWithMode for reqwest_middleware::RequestBuilder {
    async fn send_with_mode(self, mode: CacheMode) -> (CacheStatus, String) {
        let resp = self.with_extension(mode).send().await.unwrap();
        read(resp).await
    }
}

/// What each route answered Bob when it was not his own answer: each route (echoing
/// `x-user`) under a path of its own (`{prefix}{i}`), asked first by Alice through `alice`,
/// then by Bob through `bob` (the same client, or another cache over the same table). Each
/// entry is the route's label, Alice's status, Bob's status and the body Bob was served.
pub async fn answers_bob_did_not_own<L>(
    origin: &super::Origin,
    alice: &ClientWithMiddleware,
    bob: &ClientWithMiddleware,
    prefix: &str,
    routes: impl IntoIterator<Item = (L, super::Route)>,
) -> Vec<(L, CacheStatus, CacheStatus, String)> {
    let mut wrong = Vec::new();
    for (i, (label, route)) in routes.into_iter().enumerate() {
        let path = format!("{prefix}{i}");
        origin.route(&path, route);
        let url = origin.url(&path);
        let (first, alices) = get(alice, &url, &[("x-user", "alice")]).await;
        assert!(alices.ends_with("x-user=alice"), "{alices:?} ({first:?})");
        let (s, bobs) = get(bob, &url, &[("x-user", "bob")]).await;
        if !bobs.ends_with("x-user=bob") {
            wrong.push((label, first, s, bobs));
        }
    }
    wrong
}
