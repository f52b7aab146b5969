//! The answer to `/recommendations`: online and offline lists blended, then filled.
//!
//! Online items (what the shopper is looking at now) come first, then the
//! lists take turns — online, offline, online, … — so neither drowns the
//! other. An item already placed is skipped wherever it appears again. When
//! both lists run out before `k`, popular items fill the rest: the answer is
//! always `k` long (as long as the catalogue allows), unlike a blend that
//! stops at the shorter list. Items the shopper has already carted or bought
//! (as the service saw) are left out of every list.

use serde::Serialize;

/// Where a recommended item came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The user's precomputed list from the bundle.
    Personal,
    /// Similar to what the user did in this service recently.
    Online,
    /// The popular fallback.
    Popular,
}

impl Source {
    /// Every source, for metrics.
    pub const ALL: [Source; 3] = [Source::Personal, Source::Online, Source::Popular];

    /// The name used in JSON and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Personal => "personal",
            Source::Online => "online",
            Source::Popular => "popular",
        }
    }
}

/// One recommended item (raw shop id).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pick {
    /// Raw shop item id.
    pub item_id: i64,
    /// The score from the list it came from (not comparable across sources).
    pub score: f32,
    /// The list it came from.
    pub source: Source,
}

/// Blend `online` and `offline` (each best first), fill from `popular`, `k`
/// items at most, none of them in `exclude`.
pub fn blend(
    online: &[(i64, f32)],
    offline: &[(i64, f32)],
    popular: &[(i64, f32)],
    exclude: &[i64],
    k: usize,
) -> Vec<Pick> {
    let mut out: Vec<Pick> = Vec::with_capacity(k);
    let push = |out: &mut Vec<Pick>, (item_id, score): (i64, f32), source| {
        // k and exclude are small (a page, a few recent events): linear scans
        // beat hashing here.
        if out.len() < k && !out.iter().any(|p| p.item_id == item_id) && !exclude.contains(&item_id)
        {
            out.push(Pick {
                item_id,
                score,
                source,
            });
        }
    };
    let longest = online.len().max(offline.len());
    for i in 0..longest {
        if out.len() == k {
            break;
        }
        if let Some(&pick) = online.get(i) {
            push(&mut out, pick, Source::Online);
        }
        if let Some(&pick) = offline.get(i) {
            push(&mut out, pick, Source::Personal);
        }
    }
    for &pick in popular {
        if out.len() == k {
            break;
        }
        push(&mut out, pick, Source::Popular);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(picks: &[Pick]) -> Vec<(i64, Source)> {
        picks.iter().map(|p| (p.item_id, p.source)).collect()
    }

    #[test]
    fn online_first_then_turns() {
        let online = [(1, 0.9), (2, 0.8)];
        let offline = [(10, 5.0), (11, 4.0), (12, 3.0)];
        let got = blend(&online, &offline, &[], &[], 5);
        use Source::*;
        assert_eq!(
            ids(&got),
            vec![
                (1, Online),
                (10, Personal),
                (2, Online),
                (11, Personal),
                (12, Personal)
            ]
        );
    }

    #[test]
    fn duplicates_are_placed_once_and_popular_fills_to_k() {
        let online = [(1, 0.9), (10, 0.8)];
        let offline = [(10, 5.0), (1, 4.0)];
        let popular = [(1, 100.0), (20, 90.0), (21, 80.0), (22, 70.0)];
        let got = blend(&online, &offline, &popular, &[], 4);
        use Source::*;
        assert_eq!(
            ids(&got),
            vec![(1, Online), (10, Personal), (20, Popular), (21, Popular)]
        );
    }

    #[test]
    fn cold_user_gets_popular_only_and_short_catalogue_gives_short_list() {
        let popular = [(5, 3.0), (6, 2.0)];
        let got = blend(&[], &[], &popular, &[], 10);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|p| p.source == Source::Popular));
        assert!(blend(&[(1, 1.0)], &[(2, 1.0)], &popular, &[], 0).is_empty());
    }

    #[test]
    fn excluded_items_are_skipped_in_every_list() {
        let got = blend(
            &[(1, 1.0), (2, 0.5)],
            &[(2, 9.0), (3, 8.0)],
            &[(3, 1.0), (4, 1.0)],
            &[2, 3],
            3,
        );
        use Source::*;
        assert_eq!(ids(&got), vec![(1, Online), (4, Popular)]);
    }
}
