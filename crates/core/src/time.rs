//! Times as users and XSOAR write them: `3 days`, `12 hours ago`, RFC 3339, naive ISO 8601
//! (taken as UTC) and epoch seconds, like XSOAR's `arg_to_datetime` with dateparser.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

/// An absolute time as written: RFC 3339, naive ISO 8601 (taken as UTC), a date (midnight
/// UTC), or epoch seconds, or milliseconds when the number is too large for seconds.
pub fn moment(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc());
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().ok()?;
        let secs = if n > 2_000_000_000 { n / 1000 } else { n };
        return DateTime::from_timestamp(secs, 0);
    }
    None
}

/// A time as written: either relative ("3 days", counted back from when it is used) or absolute.
/// Parsed once, where it is read (config load or argument binding), and resolved with [`at`].
///
/// [`at`]: TimeSpec::at
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// This long before the time it is resolved at.
    Ago(TimeDelta),
    At(DateTime<Utc>),
}

impl TimeSpec {
    /// Parses `3 days`, `12 hours ago`, RFC 3339, naive ISO 8601 (UTC), a date, or epoch
    /// seconds or milliseconds.
    pub fn parse(input: &str) -> Result<Self, String> {
        let s = input.trim();
        let invalid = || {
            format!(
                "`{input}` is not a time: use e.g. \"3 days\", \"12 hours ago\" or 2024-05-01T00:00:00Z"
            )
        };
        if s.is_empty() {
            return Err(invalid());
        }
        if let Some(t) = moment(s) {
            return Ok(TimeSpec::At(t));
        }
        let words: Vec<&str> = s.split_whitespace().collect();
        let (count, unit) = match words.as_slice() {
            [count, unit] | [count, unit, "ago"] => (*count, *unit),
            _ => return Err(invalid()),
        };
        let count: i64 = count.parse().ok().filter(|n| *n >= 0).ok_or_else(invalid)?;
        let unit = unit.to_ascii_lowercase();
        let seconds = match unit.trim_end_matches('s') {
            "second" | "sec" => 1,
            "minute" | "min" => 60,
            "hour" => 3_600,
            "day" => 86_400,
            "week" => 7 * 86_400,
            "month" => 30 * 86_400,
            "year" => 365 * 86_400,
            _ => return Err(invalid()),
        };
        let delta = count
            .checked_mul(seconds)
            .and_then(TimeDelta::try_seconds)
            // Far enough back that resolving it against any present time stays in range.
            .filter(|d| *d < TimeDelta::days(365 * 5000))
            .ok_or_else(invalid)?;
        Ok(TimeSpec::Ago(delta))
    }

    /// The time this stands for, with relative times counted back from `now`.
    pub fn at(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            TimeSpec::At(t) => t,
            TimeSpec::Ago(d) => now
                .checked_sub_signed(d)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        }
    }
}

impl std::fmt::Display for TimeSpec {
    /// The way a person writes it: `1 day`, `10 minutes`, or RFC 3339.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeSpec::At(t) => write!(
                f,
                "{}",
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
            TimeSpec::Ago(d) => {
                let secs = d.num_seconds();
                let (n, unit) = [(86_400, "day"), (3_600, "hour"), (60, "minute")]
                    .into_iter()
                    .find(|(size, _)| secs != 0 && secs % size == 0)
                    .map_or((secs, "second"), |(size, unit)| (secs / size, unit));
                write!(f, "{n} {unit}{}", if n == 1 { "" } else { "s" })
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for TimeSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TimeSpec::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Parses `input` relative to `now`. Relative times count back from `now`.
pub fn parse_time(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    TimeSpec::parse(input).map(|t| t.at(now))
}

/// A length of time as the UI and reports say it: "3d 4h", "2h 5m", "12m", "40s" (the sign
/// left out).
pub fn span_text(secs: i64) -> String {
    let secs = secs.abs();
    let (d, h, m) = (secs / 86400, secs % 86400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_specs_print_as_written() {
        for (input, shown) in [
            ("1 day", "1 day"),
            ("10 minutes", "10 minutes"),
            ("3 days ago", "3 days"),
            ("90 seconds", "90 seconds"),
            ("2024-04-01T00:00:00Z", "2024-04-01T00:00:00Z"),
        ] {
            assert_eq!(
                TimeSpec::parse(input).unwrap().to_string(),
                shown,
                "{input}"
            );
        }
    }

    #[test]
    fn parses_relative_and_absolute_times() {
        let now = DateTime::parse_from_rfc3339("2024-05-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for (input, expected) in [
            ("3 days", "2024-05-07T12:00:00+00:00"),
            ("12 hours ago", "2024-05-10T00:00:00+00:00"),
            ("1 Week", "2024-05-03T12:00:00+00:00"),
            ("10 minutes", "2024-05-10T11:50:00+00:00"),
            ("2024-05-01T08:00:00+02:00", "2024-05-01T06:00:00+00:00"),
            ("2024-05-01T08:00:00.250Z", "2024-05-01T08:00:00.250+00:00"),
            ("2024-05-01T08:00:00", "2024-05-01T08:00:00+00:00"),
            ("2024-05-01 08:00:00", "2024-05-01T08:00:00+00:00"),
            ("2024-05-01", "2024-05-01T00:00:00+00:00"),
            ("1714550400", "2024-05-01T08:00:00+00:00"),
            ("1714550400000", "2024-05-01T08:00:00+00:00"),
        ] {
            assert_eq!(
                parse_time(input, now).map(|t| t.to_rfc3339()),
                Ok(expected.to_string()),
                "{input}"
            );
        }
        for bad in [
            "",
            "soon",
            "3 fortnights",
            "x days",
            "99999999999999999 years",
        ] {
            assert!(parse_time(bad, now).is_err(), "{bad}");
        }
    }
}
