//! Precomputed personal lists: what `recsys serve` answers from without scoring.
//!
//! Scoring one user with the two-stage model means generating candidates over
//! the whole catalogue and running the re-ranker — milliseconds, not the
//! microseconds a front end expects. So training ends by ranking, once, the
//! users likely to come back (those active in the last days of the training
//! period) and the bundle keeps their top lists. Users without a list get the
//! service's online and popular lists instead.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::TrainSet;
use crate::models::{Recommender, Scored};
use crate::progress;

/// `[offline]` of config.toml: which users get a precomputed list, and how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OfflineConfig {
    /// Items per list.
    pub top: usize,
    /// Users with an event in the last `active_days` days of training get a
    /// list; 0 means every user.
    pub active_days: u32,
    /// The model that ranks them; by default `two_stage`, else `als`, else the
    /// first model trained.
    pub model: Option<String>,
}

impl Default for OfflineConfig {
    fn default() -> Self {
        OfflineConfig {
            top: 30,
            active_days: 7,
            model: None,
        }
    }
}

/// Top lists of some users, stored flat: user `users[j]`'s list is
/// `items[offsets[j]..offsets[j + 1]]` with `scores` alongside.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineLists {
    /// The model that ranked them.
    pub model: String,
    /// Dense users with a list, ascending.
    pub users: Vec<u32>,
    /// List boundaries, `users.len() + 1` of them.
    pub offsets: Vec<u64>,
    /// Dense items, best first within each list.
    pub items: Vec<u32>,
    /// Scores alongside `items`.
    pub scores: Vec<f32>,
}

/// The model name [`OfflineConfig::model`] resolves to among `available`.
pub fn pick_model<'a>(wanted: Option<&'a str>, available: &[&'a str]) -> Option<&'a str> {
    match wanted {
        Some(name) => available.contains(&name).then_some(name),
        None => ["two_stage", "als"]
            .into_iter()
            .find(|name| available.contains(name))
            .or_else(|| available.first().copied()),
    }
}

/// Users of `train` with an event in its last `days` days (every user if `days` is 0).
pub fn active_users(train: &TrainSet, days: u32) -> Vec<u32> {
    let since = train.cutoff_ms - i64::from(days) * 86_400_000;
    (0..train.users.len() as u32)
        .filter(|&u| {
            let events = train.user_events(u);
            days == 0 || (!events.is_empty() && train.timestamp_ms[events.end - 1] >= since)
        })
        .collect()
}

impl OfflineLists {
    /// Rank `users` (ascending) with `model`, `top` items each.
    pub fn compute(model: &dyn Recommender, users: &[u32], top: usize) -> OfflineLists {
        // Batches bound the re-ranker's feature table and drive the progress bar.
        const BATCH: usize = 4096;
        debug_assert!(users.windows(2).all(|w| w[0] < w[1]));
        let bar = progress::bar(users.len() as u64, "offline lists");
        let mut lists = OfflineLists {
            model: model.name().to_string(),
            users: users.to_vec(),
            offsets: Vec::with_capacity(users.len() + 1),
            items: Vec::with_capacity(users.len() * top),
            scores: Vec::with_capacity(users.len() * top),
        };
        lists.offsets.push(0);
        // Chunks in parallel as well as within: candidate generation is
        // partly sequential per chunk.
        let ranked: Vec<Vec<Vec<Scored>>> = users
            .par_chunks(BATCH)
            .map(|chunk| {
                let queries: Vec<Option<u32>> = chunk.iter().map(|&u| Some(u)).collect();
                let lists = model.recommend_batch(&queries, top);
                bar.inc(chunk.len() as u64);
                lists
            })
            .collect();
        for list in ranked.into_iter().flatten() {
            for (item, score) in list.into_iter().take(top) {
                lists.items.push(item);
                lists.scores.push(score);
            }
            lists.offsets.push(lists.items.len() as u64);
        }
        bar.finish_and_clear();
        lists
    }

    /// `user`'s list, if it has one.
    pub fn get(&self, user: u32) -> Option<impl ExactSizeIterator<Item = Scored> + '_> {
        let j = self.users.binary_search(&user).ok()?;
        let range = self.offsets[j] as usize..self.offsets[j + 1] as usize;
        Some(
            self.items[range.clone()]
                .iter()
                .copied()
                .zip(self.scores[range].iter().copied()),
        )
    }

    /// Check the arrays against each other and the bundle's `users` and `items` counts.
    pub fn check(&self, users: usize, items: usize) -> Result<(), String> {
        if self.offsets.len() != self.users.len() + 1
            || self.offsets.first() != Some(&0)
            || self.offsets.last() != Some(&(self.items.len() as u64))
            || self.offsets.windows(2).any(|w| w[0] > w[1])
            || self.items.len() != self.scores.len()
        {
            return Err("offline list offsets do not match the lists".into());
        }
        if self.users.windows(2).any(|w| w[0] >= w[1])
            || self.users.last().is_some_and(|&u| u as usize >= users)
        {
            return Err("offline lists refer to unknown users".into());
        }
        if self.items.iter().any(|&i| i as usize >= items) {
            return Err("offline lists refer to unknown items".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl Recommender for Fixed {
        fn name(&self) -> &'static str {
            "fixed"
        }

        fn recommend(&self, user: Option<u32>, n: usize) -> Vec<Scored> {
            let u = user.unwrap_or(0);
            (0..n as u32)
                .map(|i| (u + i, 1.0 / (i + 1) as f32))
                .collect()
        }
    }

    #[test]
    fn lists_are_found_by_user_and_checked() {
        let lists = OfflineLists::compute(&Fixed, &[2, 5, 9], 3);
        assert_eq!(lists.model, "fixed");
        let five: Vec<Scored> = lists.get(5).unwrap().collect();
        assert_eq!(five, vec![(5, 1.0), (6, 0.5), (7, 1.0 / 3.0)]);
        assert!(lists.get(3).is_none());
        assert_eq!(lists.check(10, 12), Ok(()));
        assert!(lists.check(9, 12).is_err(), "user 9 is out of range");
        assert!(lists.check(10, 11).is_err(), "item 11 is out of range");
    }

    #[test]
    fn model_choice_prefers_two_stage_then_als() {
        assert_eq!(
            pick_model(None, &["popular", "als", "two_stage"]),
            Some("two_stage")
        );
        assert_eq!(pick_model(None, &["popular", "als"]), Some("als"));
        assert_eq!(pick_model(None, &["history"]), Some("history"));
        assert_eq!(
            pick_model(Some("popular"), &["popular", "als"]),
            Some("popular")
        );
        assert_eq!(pick_model(Some("nope"), &["popular"]), None);
    }
}
