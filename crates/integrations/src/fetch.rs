//! The shared part of every integration's fetch step: read the cursor, read the window from the
//! provider, choose what to emit with [`WindowCursor::advance`], and hand back the next cursor.
//! Integrations supply only "read alerts created in this window" and "make an incident".

use chrono::{DateTime, Utc};
use serde_json::Value;
use watchfloor_core::fetch::{Dated, WindowCursor};
use watchfloor_core::{FetchSettings, NewIncident, SetAside, Severity};

use crate::CommandError;

/// One fetch step's result: incidents, the cursor to commit with them, and whether the limit
/// left more for another step right away.
#[derive(Debug, Clone)]
pub struct FetchBatch {
    pub incidents: Vec<NewIncident>,
    /// Opaque to everyone but the integration that made it.
    pub cursor: Value,
    pub more: bool,
    /// Everything created before this time has been read, if the integration can say; the
    /// engine shows it as progress.
    pub covered_until: Option<DateTime<Utc>>,
    /// Records of this step that could not be read, set aside.
    pub set_aside: Vec<SetAside>,
}

/// Where a windowed read leaves the fetch: everything of a [`FetchBatch`] but its incidents.
#[derive(Debug, Clone)]
pub struct Next {
    cursor: Value,
    more: bool,
    covered_until: DateTime<Utc>,
    set_aside: Vec<SetAside>,
}

impl Next {
    /// The batch of the incidents made from the alerts [`windowed`] chose (their text cut to
    /// the stored maximums), with the records the read set aside.
    pub fn batch(self, incidents: Vec<NewIncident>) -> FetchBatch {
        FetchBatch {
            incidents: incidents.into_iter().map(NewIncident::bounded).collect(),
            cursor: self.cursor,
            more: self.more,
            covered_until: Some(self.covered_until),
            set_aside: self.set_aside,
        }
    }
}

/// What a provider returned for a window.
pub struct Read<T> {
    pub alerts: Vec<Dated<T>>,
    /// Records that could not be dated or identified.
    pub set_aside: Vec<SetAside>,
    /// The provider capped the answer, so the window is complete only up to the newest alert
    /// returned.
    pub capped: bool,
}

impl<T> Read<T> {
    /// Dates each record with `date` (its id and creation time); a record that cannot be dated
    /// is set aside rather than failing the others.
    pub fn sort_out(
        records: Vec<T>,
        date: impl Fn(&T) -> Result<(String, DateTime<Utc>), SetAside>,
    ) -> Self {
        let mut read = Read {
            alerts: Vec::with_capacity(records.len()),
            set_aside: Vec::new(),
            capped: false,
        };
        for item in records {
            match date(&item) {
                Ok((id, created)) => read.alerts.push(Dated { id, created, item }),
                Err(bad) => read.set_aside.push(bad),
            }
        }
        read
    }
}

/// Provider reads one fetch step makes at most, window after window, to gather a step's worth.
const MAX_READS_PER_STEP: usize = 16;
/// How much a window narrows when it held more than one read may: from a day to a second in
/// five reads.
const NARROW_BY: i64 = 16;

/// One fetch step: reads windows with `read` (from the cursor on, each as wide as the cursor's
/// span) until it has `limit` new alerts, or has caught up with now, and picks what to emit.
/// Returns the chosen alerts (oldest first, dated) and where the fetch goes ([`Next`]).
pub async fn windowed<T, F, Fut>(
    cursor: Option<&Value>,
    settings: &FetchSettings,
    read: F,
) -> Result<(Vec<Dated<T>>, Next), CommandError>
where
    F: Fn(DateTime<Utc>, DateTime<Utc>) -> Fut,
    Fut: std::future::Future<Output = Result<Read<T>, CommandError>>,
{
    let mut cursor: WindowCursor = match cursor {
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            CommandError::Provider(format!(
                "the stored fetch cursor is unreadable ({e}); reset it to fetch again"
            ))
        })?,
        None => WindowCursor::default(),
    };
    // Providers filter by whole seconds.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_else(Utc::now);
    let first = settings.first_fetch.at(now);
    let (mut taken, mut set_aside, mut more) = (Vec::new(), Vec::new(), true);
    for _ in 0..MAX_READS_PER_STEP {
        let (from, until) = cursor.window(now, first, settings.look_back);
        let read = match read(from, until).await {
            Ok(read) => read,
            // Too much in the window for one read: read a narrower one, unless it is already
            // as narrow as a window gets.
            Err(e) if e.is_too_much() && cursor.narrow(NARROW_BY) => {
                tracing::debug!(error = %e, span_secs = cursor.span_secs, "narrowing the fetch window");
                continue;
            }
            Err(e) => return Err(e),
        };
        set_aside.extend(read.set_aside);
        let (until, capped) = match read.alerts.iter().map(|a| a.created).max() {
            Some(newest) if read.capped => (newest.min(until), true),
            _ => (until, false),
        };
        let room = settings.limit.saturating_sub(taken.len()).max(1);
        let (take, next, left) = cursor.advance(read.alerts, until, now, settings.look_back, room);
        taken.extend(take);
        cursor = next;
        more = left || capped;
        if !more || capped || taken.len() >= settings.limit {
            break;
        }
    }
    let covered_until = cursor.high_water.unwrap_or(now);
    let cursor = serde_json::to_value(cursor).map_err(|e| CommandError::Provider(e.to_string()))?;
    Ok((
        taken,
        Next {
            cursor,
            more,
            covered_until,
            set_aside,
        },
    ))
}

/// The Field Effect severity words on XSOAR's scale, as the reference maps them; an unknown
/// word is Unknown.
pub fn field_effect_severity(word: Option<&str>) -> Severity {
    match word.unwrap_or_default() {
        "Informational" => Severity::Informational,
        "Warning" | "Low" => Severity::Low,
        "Medium" => Severity::Medium,
        "High" => Severity::High,
        "Critical" => Severity::Critical,
        _ => Severity::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use watchfloor_core::time::TimeSpec;

    use super::*;

    fn settings() -> FetchSettings {
        FetchSettings {
            enabled: true,
            interval: Duration::from_secs(60),
            first_fetch: TimeSpec::parse("3 days").unwrap(),
            limit: 50,
            look_back: Duration::ZERO,
            incident_type: String::new(),
            concurrency: 1,
        }
    }

    /// Regression (hardening 27.4): a window holding more than one read may (too many pages or
    /// bytes) failed the fetch for good. The fetch reads a narrower window, and gives up with
    /// the provider's error only when a window of one second is still too much.
    #[tokio::test]
    async fn a_window_too_full_to_read_is_narrowed() {
        for (widest_ok_secs, outcome) in [(600, Ok(())), (0, Err("too much in the window"))] {
            let reads = AtomicUsize::new(0);
            let read = |from: DateTime<Utc>, until: DateTime<Utc>| {
                reads.fetch_add(1, Ordering::Relaxed);
                async move {
                    if (until - from).num_seconds() > widest_ok_secs {
                        return Err(CommandError::TooMuch("too much in the window".into()));
                    }
                    Ok(Read::<()> {
                        alerts: Vec::new(),
                        set_aside: Vec::new(),
                        capped: false,
                    })
                }
            };
            let got = windowed(None, &settings(), read).await;
            let reads = reads.load(Ordering::Relaxed);
            match (got, outcome) {
                (Ok((_, next)), Ok(())) => {
                    let cursor: WindowCursor = serde_json::from_value(next.cursor).unwrap();
                    let span = cursor.span_secs.unwrap();
                    assert!(span <= 2 * 600, "a window near what can be read: {span}s");
                    assert!(cursor.high_water.is_some(), "the fetch moved on");
                }
                (Err(e), Err(message)) => {
                    assert_eq!(e.to_string(), message);
                    // A day, then 5400 s, 337 s, 21 s, 1 s: five reads, and the last one fails.
                    assert_eq!(reads, 5);
                }
                (got, want) => panic!("{:?} where {want:?} was expected", got.map(|_| ())),
            }
        }
    }
}
