//! Process-wide metrics: counters and latency histograms with labels, recorded where things
//! happen (fetch cycles, mirroring, provider requests, HTTP requests) and rendered in
//! Prometheus' text format by `GET /metrics`. Label values never carry secrets: instance names,
//! services, routes and status codes only.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{LazyLock, Mutex};

/// A counter family.
pub struct Counter {
    pub name: &'static str,
    pub help: &'static str,
}

/// A histogram family of durations in seconds.
pub struct Histogram {
    pub name: &'static str,
    pub help: &'static str,
}

pub const FETCH_CYCLES: Counter = Counter {
    name: "watchfloor_fetch_cycles_total",
    help: "Fetch cycles by instance and outcome (ok or failed).",
};
pub const INCIDENTS_FETCHED: Counter = Counter {
    name: "watchfloor_incidents_fetched_total",
    help: "New incidents stored by fetch, by instance.",
};
pub const SYNC_CYCLES: Counter = Counter {
    name: "watchfloor_sync_cycles_total",
    help: "Mirroring cycles by instance and outcome (ok or failed).",
};
pub const SYNC_REQUESTS: Counter = Counter {
    name: "watchfloor_sync_provider_requests_total",
    help: "Requests sent to providers by mirroring cycles, by instance: per cycle, divide by watchfloor_sync_cycles_total.",
};
pub const HTTP_REQUESTS: Counter = Counter {
    name: "watchfloor_http_requests_total",
    help: "HTTP requests served, by method, route and status.",
};
pub const HTTP_LATENCY: Histogram = Histogram {
    name: "watchfloor_http_request_seconds",
    help: "Time to answer an HTTP request, by route.",
};
pub const PROVIDER_LATENCY: Histogram = Histogram {
    name: "watchfloor_provider_request_seconds",
    help: "Time of one request to a provider, by service and outcome.",
};
pub const FETCH_LATENCY: Histogram = Histogram {
    name: "watchfloor_fetch_cycle_seconds",
    help: "Time of a fetch cycle, by instance.",
};

/// Upper bounds of the histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default)]
struct Series {
    /// Per bucket (histograms), or empty (counters).
    buckets: Vec<u64>,
    count: u64,
    sum: f64,
}

struct Family {
    help: &'static str,
    histogram: bool,
    /// By label set, rendered.
    series: BTreeMap<String, Series>,
}

static REGISTRY: LazyLock<Mutex<BTreeMap<&'static str, Family>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// `{a="x",b="y"}` with Prometheus' escaping.
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn record(
    name: &'static str,
    help: &'static str,
    histogram: bool,
    pairs: &[(&str, &str)],
    value: f64,
) {
    let mut registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let family = registry.entry(name).or_insert_with(|| Family {
        help,
        histogram,
        series: BTreeMap::new(),
    });
    let series = family.series.entry(labels(pairs)).or_default();
    if histogram {
        if series.buckets.is_empty() {
            series.buckets = vec![0; BUCKETS.len()];
        }
        for (n, bound) in BUCKETS.iter().enumerate() {
            if value <= *bound {
                series.buckets[n] += 1;
            }
        }
        series.count += 1;
        series.sum += value;
    } else {
        series.sum += value;
    }
}

impl Counter {
    pub fn add(&self, pairs: &[(&str, &str)], by: u64) {
        record(self.name, self.help, false, pairs, by as f64);
    }
}

impl Histogram {
    pub fn observe(&self, pairs: &[(&str, &str)], seconds: f64) {
        record(self.name, self.help, true, pairs, seconds);
    }
}

/// Every family recorded so far, in Prometheus' text format.
pub fn render() -> String {
    let registry = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = String::new();
    for (name, family) in registry.iter() {
        let kind = if family.histogram {
            "histogram"
        } else {
            "counter"
        };
        let _ = writeln!(out, "# HELP {name} {}\n# TYPE {name} {kind}", family.help);
        for (labels, series) in &family.series {
            if !family.histogram {
                let _ = writeln!(out, "{name}{labels} {}", series.sum);
                continue;
            }
            // `le` joins the series' own labels.
            let with_le = |le: &str| match labels.strip_suffix('}') {
                Some(open) => format!("{open},le=\"{le}\"}}"),
                None => format!("{{le=\"{le}\"}}"),
            };
            for (n, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{name}_bucket{} {}",
                    with_le(&bound.to_string()),
                    series.buckets[n]
                );
            }
            let _ = writeln!(out, "{name}_bucket{} {}", with_le("+Inf"), series.count);
            let _ = writeln!(out, "{name}_sum{labels} {}", series.sum);
            let _ = writeln!(out, "{name}_count{labels} {}", series.count);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_as_prometheus_reads_them() {
        const C: Counter = Counter {
            name: "test_things_total",
            help: "Things.",
        };
        const H: Histogram = Histogram {
            name: "test_wait_seconds",
            help: "Waits.",
        };
        C.add(&[("instance", "a\"b")], 2);
        C.add(&[("instance", "a\"b")], 1);
        H.observe(&[("route", "/x")], 0.003);
        H.observe(&[("route", "/x")], 2.0);
        let text = render();
        assert!(
            text.contains("# TYPE test_things_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("test_things_total{instance=\"a\\\"b\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("test_wait_seconds_bucket{route=\"/x\",le=\"0.0025\"} 0\n"));
        assert!(text.contains("test_wait_seconds_bucket{route=\"/x\",le=\"0.005\"} 1\n"));
        assert!(text.contains("test_wait_seconds_bucket{route=\"/x\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("test_wait_seconds_count{route=\"/x\"} 2\n"));
    }
}
