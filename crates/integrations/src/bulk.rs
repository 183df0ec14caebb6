//! Reading many open incidents' alerts in bulk, for incoming mirroring: the alerts of each
//! stretch of time the open incidents span are listed at once, a stretch whose listing holds
//! far more than its incidents is split in two, and a stretch too small to be worth a listing is
//! left to reads one by one.

use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{CommandError, OpenAlert};

/// Fewer open incidents than this in a stretch are read one by one: a listing would cost as
/// much.
pub const BULK_MIN: usize = 4;
/// A stretch's listing may hold this many times its open incidents (alerts of other batches,
/// or open at the provider but closed here) before the stretch is split in two.
const LISTING_SLACK: usize = 4;

/// One listing of a stretch: the alerts it showed, by id, and whether it was cut at the cap.
pub struct Listed {
    pub alerts: Vec<(String, Value)>,
    pub cut: bool,
}

/// The alerts of `open` that the listings of their stretches of time show, by id (the others
/// a listing shows are dropped as it is read). `list(first, last, cap)`
/// lists the alerts that occurred from `first` to `last` (both included), at most `cap`.
pub async fn read_spans<F, Fut>(
    open: &[&OpenAlert],
    list: F,
) -> Result<HashMap<String, Value>, CommandError>
where
    F: Fn(DateTime<Utc>, DateTime<Utc>, usize) -> Fut,
    Fut: Future<Output = Result<Listed, CommandError>>,
{
    // Only the alerts asked for are kept: a listing shows others of the same stretch too.
    let wanted: std::collections::HashSet<&str> =
        open.iter().map(|a| a.external_id.as_str()).collect();
    let mut order: Vec<&OpenAlert> = open.to_vec();
    order.sort_by_key(|a| a.occurred);
    let mut found = HashMap::new();
    let mut spans = vec![(0, order.len())];
    while let Some((start, end)) = spans.pop() {
        let span = &order[start..end];
        if span.len() < BULK_MIN {
            continue;
        }
        let (first, last) = (span[0].occurred, span[span.len() - 1].occurred);
        let listed = list(first, last, LISTING_SLACK * span.len() + 500).await?;
        found.extend(
            listed
                .alerts
                .into_iter()
                .filter(|(id, _)| wanted.contains(id.as_str())),
        );
        if listed.cut {
            let middle = start + (end - start) / 2;
            spans.push((start, middle));
            spans.push((middle, end));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn alert(id: usize, minute: i64) -> OpenAlert {
        OpenAlert {
            external_id: format!("a{id}"),
            occurred: DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap(),
            seen: Value::Null,
        }
    }

    /// A provider of `alerts`, listing at most `cap` of a stretch; the stretches asked for.
    async fn read(open: &[OpenAlert], alerts: &[OpenAlert]) -> (usize, Vec<(i64, i64)>) {
        let asked = Mutex::new(Vec::new());
        let refs: Vec<&OpenAlert> = open.iter().collect();
        let found = read_spans(&refs, |first, last, cap| {
            asked
                .lock()
                .unwrap()
                .push((first.timestamp(), last.timestamp()));
            let inside: Vec<(String, Value)> = alerts
                .iter()
                .filter(|a| a.occurred >= first && a.occurred <= last)
                .map(|a| (a.external_id.clone(), Value::Null))
                .collect();
            let cut = inside.len() > cap;
            async move {
                Ok(Listed {
                    alerts: inside.into_iter().take(cap).collect(),
                    cut,
                })
            }
        })
        .await
        .unwrap();
        (found.len(), asked.into_inner().unwrap())
    }

    #[tokio::test]
    async fn a_stretch_is_listed_once_and_split_only_when_its_listing_is_cut() {
        let open: Vec<OpenAlert> = (0..100).map(|n| alert(n, n as i64)).collect();
        // Only the open ones in their stretch: one listing shows all of them.
        let (found, asked) = read(&open, &open).await;
        assert_eq!((found, asked.len()), (100, 1));
        // Ten thousand closed ones between them: the stretch is split until each listing fits.
        let mut crowded = open.clone();
        crowded.extend((0..10_000).map(|n| alert(1_000 + n, (n % 100) as i64)));
        let (found, asked) = read(&open, &crowded).await;
        assert!(found >= 100, "{found}");
        assert!(asked.len() > 1 && asked.len() < 100, "{asked:?}");
        // Too few to list: left to reads one by one.
        let (found, asked) = read(&open[..3], &open).await;
        assert_eq!((found, asked.len()), (0, 0));
    }
}
