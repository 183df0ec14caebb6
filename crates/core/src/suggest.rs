//! "Did you mean" suggestions by edit distance.

/// Up to three candidates closest to `input`: within an edit distance of a quarter of its length
/// (at least 2), or containing it, closest first.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let input_lower = input.to_lowercase();
    let limit = (input.chars().count() / 4).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let d = levenshtein(&input_lower, &c.to_lowercase());
            let contains = input_lower.len() >= 3 && c.to_lowercase().contains(&input_lower);
            (d <= limit || contains).then_some((d, c))
        })
        .collect();
    scored.sort();
    scored.dedup();
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names() {
        let names = [
            "cov-mgsec-get-aro",
            "cov-mgsec-list-org",
            "cov-mgsec-broker-list-org",
        ];
        assert_eq!(
            closest("cov-mgsec-get-ar", names),
            vec!["cov-mgsec-get-aro"]
        );
        assert_eq!(
            closest("list-org", names),
            vec!["cov-mgsec-list-org", "cov-mgsec-broker-list-org"]
        );
        assert!(closest("zzz", names).is_empty());
    }
}
