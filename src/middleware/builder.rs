//! [`CacheMiddlewareBuilder`]: every option, with its default.

use std::ffi::OsString;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{HeaderName, Method, StatusCode};

use super::{background::Background, breaker::Breaker, CacheMiddleware, Inner, Settings};
use crate::clock::{Clock, SystemClock};
use crate::key::{key_from_env, KeyRules, Redactor, REDACTION_KEY_ENV};
use crate::metrics::Counters;
use crate::policy::{ExpireAfter, Rules, UrlPattern};
use crate::CacheStore;

/// The default [`max_body_size`](CacheMiddlewareBuilder::max_body_size): 10 MiB, lowered to
/// the store's body limit (DynamoDB: 4 MiB with compression, the item size without, the S3
/// limit when larger bodies go to S3).
const DEFAULT_MAX_BODY_SIZE: usize = 10 << 20;

/// Configures a [`CacheMiddleware`]; from [`CacheMiddleware::builder`].
#[must_use]
pub struct CacheMiddlewareBuilder {
    settings: Settings,
    /// A redaction key was set in code: the environment's is not read.
    redaction_key_in_code: bool,
    /// `max_body_size` was set: [`build`](Self::build) says when the store lowers it.
    body_size_set: bool,
}

impl CacheMiddlewareBuilder {
    pub(super) fn new(store: Box<dyn CacheStore>) -> Self {
        CacheMiddlewareBuilder {
            settings: Settings {
                store,
                rules: Rules {
                    shared: false,
                    expire_after: None,
                    expire_after_urls: Vec::new(),
                    revalidation_retention: Duration::from_secs(24 * 3600),
                    stale_while_revalidate: None,
                    stale_if_error: None,
                },
                keys: KeyRules::default(),
                redactor: Arc::default(),
                methods: vec![Method::GET, Method::HEAD],
                statuses: None,
                filter: None,
                store_timeout: Duration::from_secs(1),
                max_body_size: DEFAULT_MAX_BODY_SIZE,
                clock: Arc::new(SystemClock),
                cache_status_header: None,
                refresh_client: OnceLock::new(),
                refresh_timeout: Duration::from_secs(30),
                coalesce: true,
                background_writes: false,
                background_limit: 1024,
                breaker_threshold: 5,
                breaker_cool_down: Duration::from_secs(30),
                shared_set_cookie: false,
            },
            redaction_key_in_code: false,
            body_size_set: false,
        }
    }

    /// Whether concurrent misses for one key share one origin request and one write. Default
    /// `true`. The first caller goes to the origin; the others wait for it and are served its
    /// response ([`CacheStatus::Coalesced`](crate::CacheStatus::Coalesced)) when it was
    /// admitted to the store (once its body has ended whole; the write may still be under way)
    /// and their Vary-named headers match; otherwise (not storable, too large, an error, the
    /// first caller cancelled) they make their own requests.
    pub fn coalesce(mut self, coalesce: bool) -> Self {
        self.settings.coalesce = coalesce;
        self
    }

    /// Whether writes to the store happen in background tasks, so the end of a miss's body
    /// does not wait for the write (its first byte never does). Default `false`: the end of
    /// the body waits for the write, within the request's store budget. A failed background
    /// write is logged and counted. [`CacheMiddleware::flush`] awaits pending writes: in AWS Lambda, call it before
    /// the handler returns, or the write may be frozen with the execution environment.
    pub fn background_writes(mut self, background: bool) -> Self {
        self.settings.background_writes = background;
        self
    }

    /// Freshness for responses that give none of their own; see [`ExpireAfter`]. Accepts a
    /// `Duration`. Default: none, so only the response's headers (and RFC 9111's Last-Modified
    /// heuristic) decide. A request can set its own with an [`ExpireAfter`] extension.
    pub fn expire_after(mut self, expire_after: impl Into<ExpireAfter>) -> Self {
        self.settings.rules.expire_after = Some(expire_after.into());
        self
    }

    /// `expire_after` for URLs matching `pattern` (requests-cache's `urls_expire_after`):
    /// matched without the scheme, `*` for any run of characters, and as a prefix, so
    /// `"api.example.com/v1"` covers everything under it. Patterns are tried in the order they
    /// were added; the first match wins over the global `expire_after`.
    pub fn expire_after_url(mut self, pattern: &str, expire_after: impl Into<ExpireAfter>) -> Self {
        self.settings
            .rules
            .expire_after_urls
            .push((UrlPattern::new(pattern), expire_after.into()));
        self
    }

    /// Cache as a shared cache (RFC 9111): `private` responses are not stored, `s-maxage`
    /// applies, and responses to requests with `Authorization` are stored only when the
    /// response allows it (`public`, `s-maxage`, `must-revalidate`). Default `false`.
    pub fn shared(mut self, shared: bool) -> Self {
        self.settings.rules.shared = shared;
        self
    }

    /// The store time one request may spend: every store call of the request (the lookup, a
    /// second lookup for a Vary variant or a HEAD's GET, the write, invalidations) shares it,
    /// so a failing store costs a request at most this much. Past it the cache gives up on the
    /// store and goes to the origin. Default 1 s. Background writes and refreshes each get a
    /// budget of their own.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.settings.store_timeout = timeout;
        self
    }

    /// The request methods that are cached. Default GET and HEAD. Other methods pass through
    /// ([`CacheStatus::Bypassed`](crate::CacheStatus::Bypassed)); a successful unsafe one
    /// invalidates what is stored for its URL (RFC 9111 §4.4). A cached method with a body has
    /// the body in its key.
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.settings.methods = methods.into_iter().collect();
        self
    }

    /// Only responses with these status codes are stored (requests-cache's `allowable_codes`):
    /// numbers (`[200, 404]`) or [`StatusCode`]s. Default: any status HTTP rules allow a cache
    /// to store.
    ///
    /// # Panics
    /// On a number that is not a status code (outside 100–999): a configuration error, told
    /// when the cache is configured rather than dropped silently.
    pub fn allowed_statuses<I, S>(mut self, statuses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: TryInto<StatusCode> + Copy + std::fmt::Debug,
    {
        self.settings.statuses = Some(
            statuses
                .into_iter()
                .map(|s| {
                    s.try_into().unwrap_or_else(|_| {
                        panic!("allowed_statuses: {s:?} is not an HTTP status code (100–999)")
                    })
                })
                .collect(),
        );
        self
    }

    /// A last say on what is stored: called with each response HTTP rules would store, before
    /// its body is read; `false` keeps it out of the cache
    /// ([`NotStored::Filtered`](crate::NotStored::Filtered)).
    pub fn filter(
        mut self,
        keep: impl Fn(&reqwest::Response) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.settings.filter = Some(Box::new(keep));
        self
    }

    /// The largest body the cache keeps a copy of to store (the body streams to the caller
    /// either way). A response announced larger is not copied; one whose copy passes the limit
    /// while streaming is not stored ([`NotStored::TooLarge`](crate::NotStored::TooLarge)).
    /// Default 10 MiB. A larger value than the store's own body limit
    /// ([`CacheStore::max_body_size`]) is lowered to it; a store without a limit
    /// ([`MemoryStore`](crate::MemoryStore)) takes this value as it is. For DynamoDB that limit
    /// is 4 MiB with compression (the default with the `zstd` feature; the body is stored only
    /// if the compressed item fits) and the item size without (409,600 bytes unless
    /// [`max_item_size`](crate::DynamoDbStoreBuilder::max_item_size) lowers it); with large
    /// bodies kept in S3 (feature `s3`), the larger of that and the S3 limit (`S3Bodies`'s
    /// `max_body_size`, default 32 MiB).
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.settings.max_body_size = bytes;
        self.body_size_set = true;
        self
    }

    /// Request headers the cache varies on, as requests-cache's `match_headers`: a response is
    /// served only to requests with the same values. Default: none (Vary is honoured either
    /// way). They work as an implicit `Vary`: each value is a variant of the URL's entry, so an
    /// invalidation of the URL (a successful POST) reaches the responses for every value.
    ///
    /// Names are [`HeaderName`]s or strings in any case (`"Accept-Language"`), as the parameter
    /// lists take them.
    ///
    /// # Panics
    /// On a string that is not a header name: a configuration error, told when the cache is
    /// configured rather than dropped silently.
    pub fn match_headers<I, H>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = H>,
        H: AsRef<str>,
    {
        let names = names.into_iter().map(|name| {
            let name = name.as_ref();
            HeaderName::from_bytes(name.as_bytes())
                .unwrap_or_else(|_| panic!("match_headers: {name:?} is not a header name"))
        });
        self.settings.keys.set_match_headers(names.collect());
        self
    }

    /// Query parameters and request headers that carry credentials: their values are digested
    /// into the key (a response fetched with one is never served to a request with another)
    /// and replaced by their digest in everything stored or logged. Replaces the default,
    /// [`DEFAULT_CREDENTIAL_PARAMETERS`](crate::key::DEFAULT_CREDENTIAL_PARAMETERS)
    /// (requests-cache's: `Authorization`, `X-API-KEY`, `access_token`, `api_key`): to add a
    /// name, list the defaults with it. Names match
    /// case-insensitively (`API_KEY=` and `Api_Key=` alike). `Authorization`,
    /// `Proxy-Authorization`, `Cookie` and a URL's user name and password are credentials
    /// whatever this says.
    pub fn credential_parameters<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redactor()
            .set_credentials(names.into_iter().map(Into::into));
        self
    }

    /// Query parameters and request headers left out of the key entirely (requests-cache's
    /// `ignored_parameters`): **callers that differ only in them share entries**, so name only
    /// parameters that do not change the response (a tracking id, a cache-buster). Their values
    /// are still replaced by their digest in everything stored or logged. Default: none. Names
    /// match case-insensitively. For credentials, use
    /// [`credential_parameters`](Self::credential_parameters) instead, which keeps callers apart.
    ///
    /// A name that is also a credential parameter (the defaults included: `api_key`,
    /// `access_token`, `X-API-KEY`, `Authorization`) stays a credential, and
    /// [`build`](Self::build) logs a warning: requests-cache lists API keys among its ignored
    /// parameters, and carried over here that habit would make callers with different keys share
    /// entries. To share entries across a credential on purpose, leave it out of
    /// `credential_parameters` or turn off [`credentials_in_key`](Self::credentials_in_key).
    pub fn ignored_parameters<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.redactor()
            .set_excluded(names.into_iter().map(Into::into));
        self
    }

    /// Whether credentials (see [`credential_parameters`](Self::credential_parameters)) are
    /// digested into the key, so a response fetched with one credential is never served to a
    /// request with another. Default `true`. Turn off only for a single-identity service whose
    /// token rotates, so entries survive the rotation. Their values are never stored either
    /// way, and Vary on a credential header still tells two credentials apart.
    pub fn credentials_in_key(mut self, yes: bool) -> Self {
        self.settings.keys.credentials_in_key = yes;
        self
    }

    /// The secret key of the digest that replaces secrets (HMAC-SHA256). A key set here wins.
    /// Without one, [`build`](Self::build) reads the environment variable
    /// `REQWEST_DYNAMODB_CACHE_REDACTION_KEY` ([`REDACTION_KEY_ENV`]), so a deployment can set
    /// its key without a code change: the variable's value, byte for byte, is the key, and an
    /// empty variable counts as unset (a warning is logged). With neither, a built-in key is
    /// used.
    ///
    /// What the built-in key protects: secrets are never stored in clear, and two different
    /// secrets never share an entry. What it does not: it ships with the crate, so anyone who
    /// can read the table can compute the digest of a guessed secret offline and find it there
    /// — a guessable secret (a Basic password, a short API key) can be recovered from its
    /// digest.
    ///
    /// Set a random key of 32 bytes per deployment (or their hex or base64 text, e.g.
    /// `openssl rand -base64 32`), from your secret store, the same on every instance that
    /// shares the table: instances with different keys never share entries for requests that
    /// carry credentials. Changing it orphans those entries (they expire through `ttl`).
    pub fn redaction_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.redactor().set_key(key.as_ref());
        self.redaction_key_in_code = true;
        self
    }

    /// In shared mode, whether responses that carry `Set-Cookie` are stored. Default `false`
    /// (as Varnish): a shared cache serves many callers, and a stored `Set-Cookie` would hand
    /// one caller's cookie to the next; such responses are returned unstored
    /// ([`NotStored::SetCookie`](crate::NotStored::SetCookie)), and a 304 that sets a cookie
    /// updates the stored entry without it. Private mode (the default mode) stores
    /// `Set-Cookie` as RFC 9111 §3.1 requires: it serves one identity.
    pub fn shared_set_cookie(mut self, store: bool) -> Self {
        self.settings.shared_set_cookie = store;
        self
    }

    /// The circuit breaker: after `faults` consecutive store faults (errors or timeouts), store
    /// calls are skipped for `cool_down` — requests go straight to the origin
    /// ([`NotStored::StoreFault`](crate::NotStored::StoreFault)), instead of each paying the
    /// store timeout — then one call probes the store; success closes the breaker. Default 5
    /// faults, 30 s. `faults` 0 turns it off. Openings and skipped calls are counted
    /// (`breaker_opened`, `store_skipped`) and logged.
    pub fn circuit_breaker(mut self, faults: u32, cool_down: Duration) -> Self {
        self.settings.breaker_threshold = faults;
        self.settings.breaker_cool_down = cool_down;
        self
    }

    /// The longest one background refresh (stale-while-revalidate) may take, origin request
    /// and write included; past it the refresh is abandoned, counted as failed, and the next
    /// request for the stale entry tries again. Default 30 s. It also bounds how long
    /// [`flush`](CacheMiddleware::flush) can wait for a refresh.
    pub fn refresh_timeout(mut self, timeout: Duration) -> Self {
        self.settings.refresh_timeout = timeout;
        self
    }

    /// The most background tasks (queued writes and refreshes) pending at once. Default 1024.
    /// Past it a write is dropped
    /// ([`NotStored::Overloaded`](crate::NotStored::Overloaded)) and a refresh is not started
    /// (the stale response is still served); both are counted as `background_dropped`. This
    /// keeps a slow store from growing memory with traffic.
    pub fn background_limit(mut self, tasks: usize) -> Self {
        self.settings.background_limit = tasks;
        self
    }

    /// How long past its expiry an entry that can be revalidated (it has an ETag or
    /// Last-Modified) is kept, to be revalidated with a cheap 304. Counts into the `ttl`
    /// attribute. Default 1 day.
    pub fn revalidation_retention(mut self, retention: Duration) -> Self {
        self.settings.rules.revalidation_retention = retention;
        self
    }

    /// A stale-while-revalidate window for responses that name none (RFC 5861 §3): a response
    /// stale by less than this is served at once while one background request refreshes it.
    /// Default: none (only the response's own directive).
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.settings.rules.stale_while_revalidate = Some(window);
        self
    }

    /// A stale-if-error window for responses that name none (RFC 5861 §4): when the origin
    /// answers 5xx or cannot be reached, a response stale by less than this is served instead.
    /// Default: none (only the response's own directive).
    pub fn stale_if_error(mut self, window: Duration) -> Self {
        self.settings.rules.stale_if_error = Some(window);
        self
    }

    /// The client background refreshes (stale-while-revalidate) are sent with. The middleware
    /// cannot send them through the chain it sits in — that chain is only borrowed for the
    /// request being served — so give it a client configured like yours (proxies, TLS, default
    /// headers). The refresh request carries the original request's headers. Default: a
    /// `reqwest::Client::new()`, made on first use.
    pub fn refresh_client(mut self, client: reqwest::Client) -> Self {
        self.settings.refresh_client = OnceLock::from(client);
        self
    }

    /// Adds an RFC 9211 `Cache-Status` header to every response, with this cache's name
    /// (e.g. `"reqwest-dynamodb-cache"`). Default: off; the typed
    /// [`CacheStatus`](crate::CacheStatus) extension is always there.
    pub fn cache_status_header(mut self, cache_name: impl Into<String>) -> Self {
        self.settings.cache_status_header = Some(cache_name.into());
        self
    }

    /// The clock freshness is judged by. Default [`SystemClock`]; tests use a
    /// [`ManualClock`](crate::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.settings.clock = clock;
        self
    }

    /// The redactor being configured: not shared with anything before [`build`](Self::build).
    fn redactor(&mut self) -> &mut Redactor {
        Arc::make_mut(&mut self.settings.redactor)
    }

    /// The middleware. Its redaction key is the one set with
    /// [`redaction_key`](Self::redaction_key), else the one in the environment variable
    /// [`REDACTION_KEY_ENV`] (read here), else the built-in one.
    pub fn build(self) -> CacheMiddleware {
        self.build_with_redaction_key_env(std::env::var_os(REDACTION_KEY_ENV))
    }

    /// [`build`](Self::build), with `value` standing for the value of the environment variable
    /// [`REDACTION_KEY_ENV`]: how tests give a deployment key without changing the process's
    /// environment, which other tests read at the same time.
    #[doc(hidden)]
    pub fn build_with_redaction_key_env(mut self, value: Option<OsString>) -> CacheMiddleware {
        if !self.redaction_key_in_code {
            if let Some(key) = key_from_env(value) {
                self.redactor().set_key(&key);
            }
        }
        match self.settings.store.max_body_size() {
            Some(limit) if self.body_size_set && self.settings.max_body_size > limit => {
                tracing::warn!(
                    max_body_size = self.settings.max_body_size,
                    store_limit = limit,
                    "max_body_size is above what the store can hold: bodies up to the store's limit are stored"
                );
            }
            _ => {}
        }
        let both = self.settings.redactor.overlap();
        if !both.is_empty() {
            tracing::warn!(
                names = ?both,
                "named in both credential_parameters and ignored_parameters: treated as credentials (their values stay in the key, unless credentials_in_key(false))"
            );
        }
        let mut settings = self.settings;
        settings.keys.share_redactor(Arc::clone(&settings.redactor));
        CacheMiddleware {
            inner: Arc::new(Inner {
                refreshing: Mutex::new(Default::default()),
                background: Background::new(settings.background_limit),
                breaker: Breaker::new(settings.breaker_threshold, settings.breaker_cool_down),
                flights: Default::default(),
                reads: Default::default(),
                ledger: Default::default(),
                counters: Counters::default(),
                settings,
            }),
        }
    }
}
