//! Times as users and XSOAR write them: `3 days`, `12 hours ago`, RFC 3339, naive ISO 8601
//! (taken as UTC) and epoch seconds, like XSOAR's `arg_to_datetime` with dateparser.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

/// Parses `input` relative to `now`. Relative times count back from `now`.
pub fn parse_time(input: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let s = input.trim();
    let invalid = || {
        format!(
            "`{input}` is not a time: use e.g. \"3 days\", \"12 hours ago\" or 2024-05-01T00:00:00Z"
        )
    };
    if s.is_empty() {
        return Err(invalid());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.fZ",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).ok_or_else(invalid)?.and_utc());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = s.parse().map_err(|_| invalid())?;
        let secs = if n > 2_000_000_000 { n / 1000 } else { n };
        return DateTime::from_timestamp(secs, 0).ok_or_else(invalid);
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
        .ok_or_else(invalid)?;
    now.checked_sub_signed(delta).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

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
