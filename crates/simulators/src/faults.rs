//! Fault injection shared by the simulators: latency, 429 with Retry-After, 5xx and malformed
//! JSON, switched on through [`Faults`] or the `/_sim/faults` control endpoint. Also counts
//! requests per path, so tests can assert how often a client called an endpoint.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Which faults to inject. Counts apply to the next N provider requests (control endpoints
/// under `/_sim` are never faulted); a large N keeps a fault on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Added to every provider request.
    pub latency_ms: u64,
    /// The next N requests get 429 Too Many Requests.
    pub rate_limit: u32,
    /// Sent as Retry-After with each 429.
    pub retry_after_secs: u64,
    /// The next N requests get 503 Service Unavailable.
    pub server_errors: u32,
    /// The next N successful responses have their JSON body cut short.
    pub malformed: u32,
    /// This percentage of requests, at random, get 429 (with Retry-After) or 503.
    pub random_failure_percent: u8,
    /// Hostile: paged list endpoints always say another page follows, with a new item on each
    /// page past the data (FES ARO lists).
    pub endless_pages: bool,
    /// Hostile: the text of listed records carries a NUL character, which PostgreSQL's text
    /// refuses (FES ARO titles).
    pub nul_in_text: bool,
    /// Hostile: the details of the record added last are padded to this many MiB whenever it
    /// is listed (FES ARO lists): one alert too large to keep among ordinary ones.
    pub huge_record_mib: u32,
    /// Hostile: every listed record's details grow by this many KiB (FES ARO lists); with
    /// `endless_pages`, pages that never end and weigh something.
    pub pad_records_kib: u32,
    /// When set, faults reach only requests whose path ends with this (e.g. `/aros`), so that
    /// one call of a command can fail while the others succeed.
    pub only_path: Option<String>,
}

/// Live fault switches and request counters of one simulator.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultsInner>>,
}

#[derive(Debug, Default)]
struct FaultsInner {
    spec: FaultSpec,
    requests: BTreeMap<String, usize>,
    /// Draws for `random_failure_percent`: deterministic, so runs repeat.
    rng_state: u64,
    /// Requests answered with an injected 429 or 503.
    injected: usize,
}

/// What to do to one request.
enum Action {
    Pass { malformed: bool },
    RateLimit(u64),
    ServerError,
}

impl Faults {
    pub fn set(&self, spec: FaultSpec) {
        self.lock().spec = spec;
    }

    pub fn get(&self) -> FaultSpec {
        self.lock().spec.clone()
    }

    /// How many provider requests reached `path` (method-less, query excluded).
    pub fn requests(&self, path: &str) -> usize {
        self.lock().requests.get(path).copied().unwrap_or(0)
    }

    /// How many requests got an injected 429 or 503.
    pub fn injected(&self) -> usize {
        self.lock().injected
    }

    pub fn request_counts(&self) -> BTreeMap<String, usize> {
        self.lock().requests.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FaultsInner> {
        // A poisoned lock only means a handler panicked mid-update of plain counters.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn decide(&self, path: &str) -> (Duration, Action) {
        let mut inner = self.lock();
        *inner.requests.entry(path.to_string()).or_default() += 1;
        if inner
            .spec
            .only_path
            .as_deref()
            .is_some_and(|only| !path.ends_with(only))
        {
            return (Duration::ZERO, Action::Pass { malformed: false });
        }
        let latency = Duration::from_millis(inner.spec.latency_ms);
        inner.rng_state = inner.rng_state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let draw = crate::rng::Rng::new(inner.rng_state).next_u64();
        let spec = &mut inner.spec;
        let random = spec.random_failure_percent > 0
            && (draw % 100) < u64::from(spec.random_failure_percent);
        let action = if random && draw.is_multiple_of(2) {
            Action::RateLimit(spec.retry_after_secs)
        } else if random {
            Action::ServerError
        } else if spec.rate_limit > 0 {
            spec.rate_limit -= 1;
            Action::RateLimit(spec.retry_after_secs)
        } else if spec.server_errors > 0 {
            spec.server_errors -= 1;
            Action::ServerError
        } else {
            let malformed = spec.malformed > 0;
            if malformed {
                spec.malformed -= 1;
            }
            Action::Pass { malformed }
        };
        if !matches!(action, Action::Pass { .. }) {
            inner.injected += 1;
        }
        (latency, action)
    }
}

/// Middleware that applies the fault switches to every request outside `/_sim`.
pub async fn layer(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/_sim") {
        return next.run(req).await;
    }
    let (latency, action) = faults.decide(&path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match action {
        Action::RateLimit(after) => {
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                "{\"error\": \"rate limit exceeded, slow down\"}",
            )
                .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(after));
            resp
        }
        Action::ServerError => (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"error\": \"service temporarily unavailable\"}",
        )
            .into_response(),
        Action::Pass { malformed } => {
            let resp = next.run(req).await;
            if malformed && resp.status().is_success() {
                let (mut parts, _) = resp.into_parts();
                parts.headers.remove(header::CONTENT_LENGTH);
                Response::from_parts(parts, Body::from("{\"items\": [{\"ID\": "))
            } else {
                resp
            }
        }
    }
}
