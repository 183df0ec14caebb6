//! Fetching exactly once: the fetch settings of an instance, and [`WindowCursor`], the pure
//! cursor logic every time-windowed integration shares.
//!
//! A fetch reads the window `[high_water - look_back, high_water + span]`, capped at now (the
//! first time from `first_fetch`). It skips the alerts it already emitted, which the cursor
//! remembers for the last `look_back`, takes the oldest new ones up to the limit, and moves
//! `high_water` to the window's end when it took everything, or to the creation time of the last
//! one it took when the limit cut the window short. So nothing at a window's edge is fetched
//! twice, alerts the provider shows late (within `look_back`) are still fetched, and a long
//! backfill continues where it stopped.
//!
//! `span` adapts while a fetch catches up: it shrinks when a read brought more than the limit
//! and grows when it brought little, so that one step reads about one step's worth, not the
//! whole backlog again.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::time::TimeSpec;

/// How much time a first read covers, before the span adapts.
const FIRST_SPAN_SECS: i64 = 86_400;
/// The span never grows past this.
const MAX_SPAN_SECS: i64 = 365 * 86_400;

/// Cursor scopes (broker organizations) fetched at the same time, unless `fetch_concurrency` says.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// How an instance fetches: from the config file, with the integration's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSettings {
    pub enabled: bool,
    pub interval: Duration,
    /// How far back the first fetch looks, e.g. `1 day`.
    pub first_fetch: TimeSpec,
    /// Most incidents per fetch (per organization in broker mode).
    pub limit: usize,
    pub look_back: Duration,
    pub incident_type: String,
    /// Cursor scopes (broker organizations) fetched at the same time.
    pub concurrency: usize,
}

/// Where a time-windowed fetch stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowCursor {
    /// Everything created before this (less the look-back) has been seen.
    pub high_water: Option<DateTime<Utc>>,
    /// Ids emitted that were created within the look-back before `high_water`, with their time.
    #[serde(default)]
    pub recent: BTreeMap<String, DateTime<Utc>>,
    /// Seconds past `high_water` that the next read covers, while catching up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_secs: Option<i64>,
}

/// A provider record that a fetch could not read (no id, a creation time that is not a time),
/// set aside so that it does not block the others, and shown in the instance's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    /// The record's id as the provider sent it, or `?` when it has none.
    pub id: String,
    pub reason: String,
}

/// How a JSON value reads in a message: strings quoted, other kinds named.
pub fn describe(value: &serde_json::Value) -> String {
    use serde_json::Value;
    let shown = |v: &Value| {
        let text = v.to_string();
        match text.char_indices().nth(80) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    };
    match value {
        Value::Null => "nothing".into(),
        Value::String(_) => shown(value),
        Value::Number(_) => format!("{} (a number)", shown(value)),
        Value::Bool(_) => format!("{value} (a boolean)"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A record's id: a non-empty string in `field`, else why not.
pub fn record_id(record: &serde_json::Value, field: &str) -> Result<String, SetAside> {
    match &record[field] {
        serde_json::Value::String(s) if !s.is_empty() => Ok(s.clone()),
        other => Err(SetAside {
            id: "?".into(),
            reason: format!("its {field} is {}, not an id", describe(other)),
        }),
    }
}

/// An alert in a window: its id, its creation time, and the alert.
pub struct Dated<T> {
    pub id: String,
    pub created: DateTime<Utc>,
    pub item: T,
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl WindowCursor {
    fn span(&self) -> i64 {
        self.span_secs
            .unwrap_or(FIRST_SPAN_SECS)
            .clamp(1, MAX_SPAN_SECS)
    }

    /// Narrows the next window's span `by` times, after a window held more than one read
    /// may; false when it is already a second wide.
    pub fn narrow(&mut self, by: i64) -> bool {
        let span = self.span();
        self.span_secs = Some((span / by.max(2)).max(1));
        span > 1
    }

    /// The window to read now: from (inclusive) and until (inclusive).
    pub fn window(
        &self,
        now: DateTime<Utc>,
        first_fetch_start: DateTime<Utc>,
        look_back: Duration,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let (from, edge) = match self.high_water {
            Some(h) => (h.checked_sub_signed(delta(look_back)).unwrap_or(h), h),
            None => (first_fetch_start, first_fetch_start),
        };
        let until = edge
            .checked_add_signed(TimeDelta::seconds(self.span()))
            .unwrap_or(now)
            .min(now);
        (from.min(now), until)
    }

    /// Chooses what to emit from the alerts read in the window ending at `until`, and the next
    /// cursor. Emits the oldest new alerts first, at most `limit`; the bool says whether more
    /// is waiting now: the limit left new alerts, or the window ended before `now`.
    pub fn advance<T>(
        &self,
        mut read: Vec<Dated<T>>,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
        look_back: Duration,
        limit: usize,
    ) -> (Vec<Dated<T>>, WindowCursor, bool) {
        read.retain(|a| !self.recent.contains_key(&a.id));
        read.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        read.dedup_by(|a, b| a.id == b.id);
        let found = read.len();
        let cut = found > limit;
        read.truncate(limit);
        let limit = limit.max(1) as i64;
        let span_secs = match (cut, until < now) {
            // Too much in one read: next time cover only what one step can take.
            (true, _) => Some((self.span() * limit / found as i64).max(1)),
            // Caught up to an earlier edge with room to spare: cover more next time.
            (false, true) if (found as i64) < limit / 2 => {
                Some((self.span() * 2).min(MAX_SPAN_SECS))
            }
            (false, true) => Some(self.span()),
            // Caught up to now.
            (false, false) => self.span_secs,
        };
        let more = cut || until < now;
        let high_water = match (cut, read.last()) {
            (true, Some(last)) => last.created.max(self.high_water.unwrap_or(last.created)),
            _ => until.max(self.high_water.unwrap_or(until)),
        };
        let keep_from = high_water
            .checked_sub_signed(delta(look_back))
            .unwrap_or(high_water);
        let mut recent: BTreeMap<String, DateTime<Utc>> = self
            .recent
            .iter()
            .filter(|(_, t)| **t >= keep_from)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        recent.extend(
            read.iter()
                .filter(|a| a.created >= keep_from)
                .map(|a| (a.id.clone(), a.created)),
        );
        (
            read,
            WindowCursor {
                high_water: Some(high_water),
                recent,
                span_secs,
            },
            more,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    /// Simulates fetch cycles against a provider whose alerts become visible at `visible`,
    /// and returns every id emitted, in order.
    fn run(
        alerts: &[(&str, i64, i64)],
        cycles: &[i64],
        look_back: u64,
        limit: usize,
    ) -> Vec<String> {
        let mut cursor = WindowCursor::default();
        let mut emitted = Vec::new();
        for &now in cycles {
            let (from, until) = cursor.window(t(now), t(-1000), Duration::from_secs(look_back));
            let read = alerts
                .iter()
                .filter(|(_, created, visible)| {
                    *visible <= now && t(*created) >= from && t(*created) <= until
                })
                .map(|(id, created, _)| Dated {
                    id: id.to_string(),
                    created: t(*created),
                    item: (),
                })
                .collect();
            let (take, next, _) =
                cursor.advance(read, until, t(now), Duration::from_secs(look_back), limit);
            emitted.extend(take.into_iter().map(|a| a.id));
            cursor = next;
        }
        emitted
    }

    #[test]
    fn each_alert_once_across_window_edges() {
        // b and c share the second that ends the first window.
        let alerts = [("a", 1, 1), ("b", 10, 10), ("c", 10, 10), ("d", 15, 15)];
        assert_eq!(run(&alerts, &[10, 20, 30], 60, 100), ["a", "b", "c", "d"]);
        assert_eq!(run(&alerts, &[10, 20, 30], 0, 100), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_limit_smaller_than_the_window_continues_where_it_stopped() {
        let alerts: Vec<(String, i64, i64)> =
            (0..25).map(|i| (format!("x{i:02}"), i / 3, 0)).collect();
        let alerts: Vec<(&str, i64, i64)> = alerts
            .iter()
            .map(|(id, c, v)| (id.as_str(), *c, *v))
            .collect();
        let emitted = run(&alerts, &[100; 6], 0, 4);
        let expected: Vec<String> = (0..24).map(|i| format!("x{i:02}")).collect();
        assert_eq!(emitted, expected, "6 cycles of 4");
        assert_eq!(run(&alerts, &[100; 7], 0, 4).len(), 25);
    }

    #[test]
    fn late_arrivals_within_the_look_back_are_fetched() {
        // "late" was created at 8 but shows up at 25.
        let alerts = [("early", 5, 5), ("late", 8, 25), ("later", 28, 28)];
        assert_eq!(
            run(&alerts, &[10, 20, 30, 40], 30, 100),
            ["early", "late", "later"]
        );
        // Without enough look-back it is missed: the reason look_back exists.
        assert_eq!(run(&alerts, &[10, 20, 30, 40], 5, 100), ["early", "later"]);
    }

    #[test]
    fn the_cursor_stays_small() {
        let alerts: Vec<(String, i64, i64)> = (0..1000).map(|i| (format!("a{i}"), i, i)).collect();
        let alerts: Vec<(&str, i64, i64)> = alerts
            .iter()
            .map(|(id, c, v)| (id.as_str(), *c, *v))
            .collect();
        let mut cursor = WindowCursor::default();
        for now in (0..1000).step_by(50) {
            let (from, until) = cursor.window(t(now), t(-1), Duration::from_secs(20));
            let read = alerts
                .iter()
                .filter(|(_, c, v)| *v <= now && t(*c) >= from && t(*c) <= until)
                .map(|(id, c, _)| Dated {
                    id: id.to_string(),
                    created: t(*c),
                    item: (),
                })
                .collect();
            cursor = cursor
                .advance(read, until, t(now), Duration::from_secs(20), 1000)
                .1;
            assert!(
                cursor.recent.len() <= 21,
                "{} ids kept",
                cursor.recent.len()
            );
        }
    }

    /// Regression (hardening 4): a backfill re-read the whole window on every step (47 pages
    /// of 500 for each step of 200). Each step now reads about one step's worth.
    #[test]
    fn a_backfill_reads_about_one_step_per_step() {
        // 10,000 alerts, one every 4 minutes, over about 28 days.
        let alerts: Vec<i64> = (0..10_000).map(|i| i * 240).collect();
        let now = t(10_000 * 240);
        let (look_back, limit) = (Duration::from_secs(600), 200);
        let mut cursor = WindowCursor::default();
        let (mut emitted, mut reads, mut steps) = (Vec::new(), Vec::new(), 0);
        loop {
            steps += 1;
            assert!(steps < 500, "the backfill ends");
            let (from, until) = cursor.window(now, t(-1), look_back);
            let read: Vec<Dated<()>> = alerts
                .iter()
                .filter(|c| t(**c) >= from && t(**c) <= until)
                .map(|c| Dated {
                    id: c.to_string(),
                    created: t(*c),
                    item: (),
                })
                .collect();
            reads.push(read.len());
            let (take, next, more) = cursor.advance(read, until, now, look_back, limit);
            emitted.extend(take.into_iter().map(|a| a.id));
            cursor = next;
            if !more {
                break;
            }
        }
        let unique: std::collections::BTreeSet<&String> = emitted.iter().collect();
        assert_eq!((emitted.len(), unique.len()), (10_000, 10_000), "each once");
        let read_total: usize = reads.iter().sum();
        assert!(
            read_total < 10_000 * 3,
            "read {read_total} alerts in {steps} steps for 10,000"
        );
        assert!(
            reads.iter().skip(3).all(|n| *n <= 4 * limit),
            "after the span adapts, no read is much more than a step: {reads:?}"
        );
    }
}
