//! The HTTP client every integration uses: one connection pool per instance, timeouts, TLS
//! verification on by default (optional CA file), and retries of 429 and 5xx with capped
//! exponential backoff that honours Retry-After.
//!
//! Retry policy: GET requests retry 429, 5xx, timeouts and connection failures. Other methods
//! retry only 429, 503 and connection failures, where the provider did not act on the request,
//! so a retried POST never writes twice.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue, RETRY_AFTER, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use watchfloor_core::Secret;

use crate::listing::{Listing, ListingError, Splitter};

/// An HTTP failure, naming the service, the endpoint and what to do.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{service} {method} {endpoint} returned HTTP 401 Unauthorized: {body}; {hint}")]
    Unauthorized {
        service: &'static str,
        method: Method,
        endpoint: String,
        body: String,
        /// What to check, e.g. the API key.
        hint: &'static str,
    },
    #[error("{service} {method} {endpoint} returned HTTP {status}: {body}")]
    Status {
        service: &'static str,
        method: Method,
        endpoint: String,
        status: StatusCode,
        body: String,
    },
    #[error(
        "{service} {method} {endpoint} is still rate limited after {attempts} {}{}; try again later",
        if *attempts == 1 { "attempt" } else { "attempts" },
        retry_after.map(|d| format!(" (the server asks to wait {}s)", d.as_secs())).unwrap_or_default()
    )]
    RateLimited {
        service: &'static str,
        method: Method,
        endpoint: String,
        attempts: u32,
        retry_after: Option<Duration>,
    },
    #[error(
        "{service} {method} {endpoint} asks to retry after {}s, longer than one request may take ({}s, twice the instance's timeout); try again later",
        wait.as_secs(),
        budget.as_secs()
    )]
    WaitTooLong {
        service: &'static str,
        method: Method,
        endpoint: String,
        wait: Duration,
        budget: Duration,
    },
    #[error("malformed JSON from {service} {method} {endpoint}: {message}")]
    Decode {
        service: &'static str,
        method: Method,
        endpoint: String,
        message: String,
    },
    #[error("cannot reach {service} for {method} {endpoint}: {message}")]
    Transport {
        service: &'static str,
        method: Method,
        endpoint: String,
        message: String,
    },
    #[error(
        "{service} {method} {endpoint} sent more than {} MiB; the response is refused to protect memory: narrow the query",
        MAX_BODY / (1024 * 1024)
    )]
    TooLarge {
        service: &'static str,
        method: Method,
        endpoint: String,
    },
    #[error(
        "{service} {method} {endpoint} was not sent: this process's hold on the instance's mirroring ran out before the change could be sent; the process that holds it now sends it"
    )]
    NotSentInTime {
        service: &'static str,
        method: Method,
        endpoint: String,
    },
    #[error("cannot set up the {service} client: {message}")]
    Setup {
        service: &'static str,
        message: String,
    },
}

/// The largest response body read. A larger one is an error, so one hostile or broken answer
/// cannot take the process's memory.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Client settings of one instance.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Trust only the certificates in this PEM file (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Skip TLS certificate verification. Off by default.
    pub insecure: bool,
    /// A client certificate for mutual TLS: PEM of the PKCS#8 key and the certificate chain,
    /// held in memory only.
    pub identity: Option<Secret>,
    pub retry: RetryPolicy,
    pub proxy: Proxy,
}

/// How requests reach the provider: as XSOAR's `proxy` checkbox, off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Proxy {
    /// Straight to the provider, whatever the environment says.
    #[default]
    None,
    /// Through the system proxy: `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY`.
    System,
    /// Through this proxy.
    Url(String),
}

impl HttpOptions {
    /// The HTTP parameters integrations share: `timeout`, `ca_file`, and `insecure` (or its
    /// inverse `verify_ssl`, as XSOAR names it in some packs), as the definition gives them.
    pub fn from_config(
        config: &watchfloor_core::InstanceConfig,
    ) -> Result<Self, watchfloor_core::MissingParam> {
        let insecure = match (
            config.optional::<bool>("insecure"),
            config.optional::<bool>("verify_ssl"),
        ) {
            (Some(insecure), _) => insecure,
            (None, Some(verify)) => !verify,
            (None, None) => false,
        };
        let proxy = match (
            config.optional::<&str>("proxy_url"),
            config.optional::<bool>("proxy"),
        ) {
            (Some(url), _) => Proxy::Url(url.to_string()),
            (None, Some(true)) => Proxy::System,
            _ => Proxy::None,
        };
        Ok(HttpOptions {
            proxy,
            timeout: config.get("timeout")?,
            ca_file: config.optional::<&str>("ca_file").map(PathBuf::from),
            insecure,
            ..HttpOptions::default()
        })
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(30),
            ca_file: None,
            insecure: false,
            identity: None,
            retry: RetryPolicy::default(),
            proxy: Proxy::None,
        }
    }
}

/// How often and how long to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff; doubles each retry.
    pub base_delay: Duration,
    /// Longest backoff between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// A client for one service of one instance; clone it freely, the pool is shared.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    service: &'static str,
    base: String,
    auth: Option<HeaderValue>,
    auth_hint: &'static str,
    /// What a bare 404 (no error body: the path is not the API's) tells the user to check.
    not_found_hint: Option<&'static str>,
    error_reader: fn(&str) -> Option<String>,
    retry: RetryPolicy,
    /// How long one call may take in all, attempts and waits together: twice the timeout.
    budget: Duration,
}

/// The body of a request.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    Empty,
    Json(&'a Value),
    /// `application/x-www-form-urlencoded` pairs.
    Form(&'a [(&'a str, &'a str)]),
    /// A body of the given content type, e.g. a SOAP envelope.
    Raw {
        content_type: &'a str,
        body: &'a str,
    },
}

/// One request: method, path under the base URL, query pairs, body, and a `Cookie` header.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    pub payload: Payload<'a>,
    pub cookie: Option<&'a HeaderValue>,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str, query: &'a [(&'a str, &'a str)]) -> Self {
        Call {
            method: &Method::GET,
            path,
            query,
            payload: Payload::Empty,
            cookie: None,
        }
    }
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("service", &self.service)
            .field("base", &self.base)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A successful response: its body and the `name=value` part of each Set-Cookie header.
pub struct Body {
    pub text: String,
    pub set_cookies: Vec<String>,
}

impl HttpClient {
    /// A client for `base` (no trailing slash). With `bearer`, every request carries
    /// `Authorization: Bearer <key>`, marked sensitive so it never appears in logs.
    pub fn new(
        service: &'static str,
        base: &str,
        bearer: Option<&Secret>,
        opts: &HttpOptions,
    ) -> Result<Self, HttpError> {
        let setup = |message: String| HttpError::Setup { service, message };
        let mut builder = reqwest::Client::builder()
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("watchfloor/", env!("CARGO_PKG_VERSION")));
        builder = match &opts.proxy {
            Proxy::None => builder.no_proxy(),
            Proxy::System => builder,
            Proxy::Url(url) => builder.proxy(reqwest::Proxy::all(url).map_err(|e| {
                // The proxy's password appears nowhere: not in the URL shown, nor in the
                // driver's message.
                setup(watchfloor_core::secret::without_url_password(
                    &format!("proxy_url `{url}` cannot be used: {}", error_chain(&e)),
                    url,
                ))
            })?),
        };
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| setup(format!("cannot read ca_file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                setup(format!(
                    "ca_file {} is not a PEM certificate bundle: {e}",
                    path.display()
                ))
            })?;
            if certs.is_empty() {
                return Err(setup(format!(
                    "ca_file {} holds no certificates",
                    path.display()
                )));
            }
            builder = builder.tls_certs_only(certs);
        }
        if let Some(pem) = &opts.identity {
            let identity = reqwest::Identity::from_pem(pem.expose().as_bytes()).map_err(|e| {
                setup(format!(
                    "the client certificate cannot be used: {}",
                    error_chain(&e)
                ))
            })?;
            builder = builder.identity(identity);
        }
        if opts.insecure {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| setup(error_chain(&e)))?;
        let auth = match bearer {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| {
                        setup(
                            "the API key contains characters that cannot be sent in a header"
                                .into(),
                        )
                    })?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        Ok(HttpClient {
            client,
            service,
            base: base.trim_end_matches('/').to_string(),
            auth,
            auth_hint: "check the instance's API key",
            not_found_hint: None,
            error_reader: json_error_message,
            retry: opts.retry.clone(),
            budget: opts.timeout.saturating_mul(2),
        })
    }

    /// What a 404 without an error body tells the user to check, e.g. the base URL.
    pub fn with_not_found_hint(mut self, hint: &'static str) -> Self {
        self.not_found_hint = Some(hint);
        self
    }

    /// What a 401 error tells the user to check.
    pub fn with_auth_hint(mut self, hint: &'static str) -> Self {
        self.auth_hint = hint;
        self
    }

    /// How to find the server's message in an error body, e.g. a SOAP Fault's reason. The
    /// default reads JSON `error`, `message` or `detail`; the body itself is the fallback.
    pub fn with_error_reader(mut self, reader: fn(&str) -> Option<String>) -> Self {
        self.error_reader = reader;
        self
    }

    /// The same connection pool and settings for another base URL of the same service.
    pub fn with_base(&self, base: &str) -> Self {
        HttpClient {
            base: base.trim_end_matches('/').to_string(),
            ..self.clone()
        }
    }

    /// GET `path` with query pairs; parses the JSON body.
    pub async fn get_json(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, HttpError> {
        self.call_json(Call::get(path, query)).await
    }

    /// POST a JSON body to `path`; parses the JSON response.
    pub async fn post_json(&self, path: &str, json: &Value) -> Result<Value, HttpError> {
        self.call_json(Call {
            method: &Method::POST,
            payload: Payload::Json(json),
            ..Call::get(path, &[])
        })
        .await
    }

    /// GET `path` and return the body as text.
    pub async fn get_text(&self, path: &str) -> Result<String, HttpError> {
        Ok(self.call(Call::get(path, &[])).await?.text)
    }

    /// Sends `call` and parses the JSON response.
    pub async fn call_json(&self, call: Call<'_>) -> Result<Value, HttpError> {
        let body = self.call(call).await?;
        serde_json::from_str(&body.text).map_err(|e| HttpError::Decode {
            service: self.service,
            method: call.method.clone(),
            endpoint: call.path.to_string(),
            message: e.to_string(),
        })
    }

    /// GET a listing: the records of the top-level array, or of the array under the top-level
    /// `key`, read as they stream in. A record over [`crate::listing::MAX_RECORD`] is set
    /// aside (see [`Listing::oversized`]), and what is kept is bounded by [`MAX_BODY`].
    pub async fn get_listing(
        &self,
        path: &str,
        query: &[(&str, &str)],
        key: Option<&'static str>,
    ) -> Result<Listing, HttpError> {
        match self
            .exchange(Call::get(path, query), Reading::Listing(key))
            .await?
        {
            (Received::Listing(listing), _) => Ok(listing),
            (Received::Text(_), _) => unreachable!("a listing is read as one"),
        }
    }

    /// Sends `call`, retrying as the policy allows; any non-2xx answer is an error.
    pub async fn call(&self, call: Call<'_>) -> Result<Body, HttpError> {
        match self.exchange(call, Reading::Text).await? {
            (Received::Text(text), set_cookies) => Ok(Body { text, set_cookies }),
            (Received::Listing(_), _) => unreachable!("text is read as text"),
        }
    }

    async fn exchange(
        &self,
        call: Call<'_>,
        reading: Reading,
    ) -> Result<(Received, Vec<String>), HttpError> {
        let Call {
            method,
            path,
            query,
            payload,
            cookie,
        } = call;
        let method = method.clone();
        let url = format!("{}{path}", self.base);
        let endpoint = path.to_string();
        let started = std::time::Instant::now();
        let mut attempt = 0;
        let late = |method: &Method, endpoint: &str| HttpError::NotSentInTime {
            service: self.service,
            method: method.clone(),
            endpoint: endpoint.to_string(),
        };
        loop {
            attempt += 1;
            // A push's write goes out only before its fence, retries included (`fenced`).
            if crate::send_by().is_some_and(|by| std::time::Instant::now() >= by) {
                return Err(late(&method, &endpoint));
            }
            // The client's timeout bounds each attempt; the budget bounds them all.
            let remaining = self.budget.saturating_sub(started.elapsed());
            let mut req = self
                .client
                .request(method.clone(), &url)
                .query(query)
                .timeout(remaining.min(self.budget / 2).max(Duration::from_millis(1)));
            if let Some(auth) = &self.auth {
                req = req.header(AUTHORIZATION, auth.clone());
            }
            if let Some(cookie) = cookie {
                req = req.header(COOKIE, cookie.clone());
            }
            match payload {
                Payload::Empty => {}
                Payload::Json(json) => req = req.json(json),
                Payload::Form(pairs) => {
                    let body = form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(pairs)
                        .finish();
                    req = req
                        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body);
                }
                Payload::Raw { content_type, body } => {
                    req = req
                        .header(CONTENT_TYPE, content_type)
                        .body(body.to_string());
                }
            }
            let transport = |e: reqwest::Error| {
                let chain = error_chain(&e);
                let message = match tls_hint(&chain) {
                    Some(hint) => format!("{chain}; {hint}"),
                    None => chain,
                };
                HttpError::Transport {
                    service: self.service,
                    method: method.clone(),
                    endpoint: endpoint.clone(),
                    message,
                }
            };
            let sent = std::time::Instant::now();
            crate::counted_request();
            let latency = |outcome: &str| {
                watchfloor_core::metrics::PROVIDER_LATENCY.observe(
                    &[("service", self.service), ("outcome", outcome)],
                    sent.elapsed().as_secs_f64(),
                );
            };
            let (retryable, wait, failure) = match req.send().await {
                Err(e) => {
                    // A TLS set-up mistake fails the same way every time.
                    let settled = tls_hint(&error_chain(&e)).is_some();
                    let retryable =
                        !settled && (e.is_connect() || (method == Method::GET && e.is_timeout()));
                    (retryable, None, transport(e))
                }
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = parse_retry_after(resp.headers().get(RETRY_AFTER));
                    let set_cookies = resp
                        .headers()
                        .get_all(SET_COOKIE)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .filter_map(|v| v.split(';').next())
                        .map(|v| v.trim().to_string())
                        .collect();
                    let too_large = || HttpError::TooLarge {
                        service: self.service,
                        method: method.clone(),
                        endpoint: endpoint.clone(),
                    };
                    if let (true, Reading::Listing(key)) = (status.is_success(), reading) {
                        let listing = read_listing(resp, key, too_large, transport)
                            .await
                            .map_err(|e| match e {
                                Err(message) => HttpError::Decode {
                                    service: self.service,
                                    method: method.clone(),
                                    endpoint: endpoint.clone(),
                                    message,
                                },
                                Ok(e) => e,
                            })?;
                        latency("ok");
                        return Ok((Received::Listing(listing), set_cookies));
                    }
                    let text = read_body(resp, too_large, transport).await?;
                    if status.is_success() {
                        latency("ok");
                        return Ok((Received::Text(text), set_cookies));
                    }
                    let retryable = status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::SERVICE_UNAVAILABLE
                        || (method == Method::GET && status.is_server_error());
                    let failure =
                        self.status_error(&method, &endpoint, status, text, attempt, retry_after);
                    (retryable, retry_after, failure)
                }
            };
            latency("failed");
            if !retryable || attempt >= self.retry.max_attempts {
                if attempt > 1 {
                    // One line when a request gives up, not one per attempt.
                    tracing::warn!(service = self.service, %method, endpoint = %endpoint, attempts = attempt, error = %failure, "request failed after retries");
                }
                return Err(failure);
            }
            let backoff = self
                .retry
                .base_delay
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(self.retry.max_delay);
            let delay = wait.unwrap_or(backoff);
            if started.elapsed() + delay > self.budget {
                return Err(match wait {
                    Some(wait) => HttpError::WaitTooLong {
                        service: self.service,
                        method,
                        endpoint,
                        wait,
                        budget: self.budget,
                    },
                    None => failure,
                });
            }
            if crate::send_by().is_some_and(|by| std::time::Instant::now() + delay >= by) {
                tracing::info!(service = self.service, %method, endpoint = %endpoint, attempts = attempt, error = %failure, "not retried: the push's hold on the mirroring runs out first");
                return Err(late(&method, &endpoint));
            }
            tracing::debug!(service = self.service, %method, endpoint = %endpoint, attempt, delay_ms = delay.as_millis() as u64, error = %failure, "retrying request");
            tokio::time::sleep(delay).await;
        }
    }

    fn status_error(
        &self,
        method: &Method,
        endpoint: &str,
        status: StatusCode,
        body: String,
        attempts: u32,
        retry_after: Option<Duration>,
    ) -> HttpError {
        let (service, method, endpoint) = (self.service, method.clone(), endpoint.to_string());
        let bare = body.trim().is_empty() || (self.error_reader)(&body).is_none();
        let mut body = server_message(&body, self.error_reader);
        if let (StatusCode::NOT_FOUND, true, Some(hint)) = (status, bare, self.not_found_hint) {
            body.push_str("; ");
            body.push_str(hint);
        }
        match status {
            StatusCode::UNAUTHORIZED => HttpError::Unauthorized {
                service,
                method,
                endpoint,
                body,
                hint: self.auth_hint,
            },
            StatusCode::TOO_MANY_REQUESTS => HttpError::RateLimited {
                service,
                method,
                endpoint,
                attempts,
                retry_after,
            },
            _ => HttpError::Status {
                service,
                method,
                endpoint,
                status,
                body,
            },
        }
    }
}

/// How a successful body is read.
#[derive(Clone, Copy)]
enum Reading {
    Text,
    /// Split into records as it streams in: those of the array under this top-level key, or of
    /// the top-level array.
    Listing(Option<&'static str>),
}

enum Received {
    Text(String),
    Listing(Listing),
}

/// Reads a listing chunk by chunk (see [`crate::listing`]): an HTTP error, or the reason the
/// body is not JSON.
async fn read_listing(
    mut resp: reqwest::Response,
    key: Option<&'static str>,
    too_large: impl Fn() -> HttpError,
    transport: impl Fn(reqwest::Error) -> HttpError,
) -> Result<Listing, Result<HttpError, String>> {
    let mut splitter = Splitter::new(key, MAX_BODY);
    let fail = |e: ListingError| match e {
        ListingError::TooLarge => Ok(too_large()),
        ListingError::Malformed(message) => Err(message),
    };
    while let Some(chunk) = resp.chunk().await.map_err(|e| Ok(transport(e)))? {
        splitter.feed(&chunk).map_err(fail)?;
    }
    splitter.finish().map_err(fail)
}

/// Reads a body of at most [`MAX_BODY`] bytes, chunk by chunk.
async fn read_body(
    mut resp: reqwest::Response,
    too_large: impl Fn() -> HttpError,
    transport: impl Fn(reqwest::Error) -> HttpError,
) -> Result<String, HttpError> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(&transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(match String::from_utf8(body) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// The `error`, `message` or `detail` field of a JSON error body.
fn json_error_message(body: &str) -> Option<String> {
    let v = serde_json::from_str::<Value>(body).ok()?;
    ["error", "message", "detail"]
        .iter()
        .find_map(|k| v.get(k).and_then(Value::as_str).map(str::to_string))
}

/// The server's own error text, as `reader` finds it, or the body.
fn server_message(body: &str, reader: fn(&str) -> Option<String>) -> String {
    let text = reader(body).unwrap_or_else(|| body.trim().to_string());
    let text = if text.is_empty() {
        "(empty body)".to_string()
    } else {
        text
    };
    // Keep errors readable when a server answers with a whole HTML page.
    match text.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Retry-After as delta-seconds, or as an HTTP date (the wait until then; none if past).
fn parse_retry_after(value: Option<&HeaderValue>) -> Option<Duration> {
    let text = value?.to_str().ok()?.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
        .or(Some(Duration::ZERO))
}

/// What to do about a TLS failure that retrying cannot fix, from the error's text.
fn tls_hint(chain: &str) -> Option<&'static str> {
    if chain.contains("UnknownIssuer") || chain.contains("unknown issuer") {
        Some(
            "the server's certificate is signed by a CA this instance does not trust: set the instance's `ca_file` to that CA's PEM file",
        )
    } else if chain.contains("NotValidForName") {
        Some("the server's certificate is for another name: use the host name it was issued for")
    } else if chain.contains("InvalidContentType") || chain.contains("corrupt message") {
        Some("the server did not answer with TLS: use http:// for this address, or check the port")
    } else if chain.contains("Expired") {
        Some("the server's certificate has expired")
    } else {
        None
    }
}

/// An error and its sources, at most 500 characters (a URL with a huge query can be inside).
fn error_chain(e: &dyn std::error::Error) -> String {
    let out = full_chain(e);
    match out.char_indices().nth(500) {
        Some((cut, _)) => format!("{}…", &out[..cut]),
        None => out,
    }
}

fn full_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Percent-encodes one path segment, so ids cannot change the path (`../`, `?`, `/`).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~'
                if !(s == "." || s == "..") =>
            {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (a proxy password appeared in the `instances test` error and the WARN log):
    /// a proxy URL that cannot be used is named without its password.
    #[test]
    fn a_bad_proxy_url_is_named_without_its_password() {
        let opts = HttpOptions {
            proxy: Proxy::Url("http://user:S3cr3tPass@proxy.example:notaport".into()),
            ..HttpOptions::default()
        };
        match HttpClient::new("FES Portal", "https://portal.example", None, &opts) {
            Ok(_) => panic!("a port that is not a number is refused"),
            Err(e) => {
                let said = e.to_string();
                assert!(said.contains("user:***@proxy.example"), "{said}");
                assert!(!said.contains("S3cr3tPass"), "{said}");
            }
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let header = |v: &str| HeaderValue::from_str(v).unwrap();
        assert_eq!(
            parse_retry_after(Some(&header("7"))),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(Some(&header("Wed, 21 Oct 2015 07:28:00 GMT"))),
            Some(Duration::ZERO),
            "a past date: retry now"
        );
        let soon = (chrono::Utc::now() + chrono::TimeDelta::seconds(30)).to_rfc2822();
        let wait = parse_retry_after(Some(&header(&soon))).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(parse_retry_after(Some(&header("soon"))), None);
        assert_eq!(parse_retry_after(None), None);
    }

    #[test]
    fn path_segments_cannot_change_the_path() {
        assert_eq!(path_segment("a1-B_2.c~"), "a1-B_2.c~");
        assert_eq!(path_segment("../admin?x=1"), "..%2Fadmin%3Fx%3D1");
        assert_eq!(path_segment(".."), "%2E%2E");
    }
}
