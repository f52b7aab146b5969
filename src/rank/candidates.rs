//! The first stage: a few hundred candidate items per user, from several sources.
//!
//! No single model finds every item a shopper will add to the cart: ALS knows
//! taste, the shopper's own history knows intent, popularity knows what sells
//! now. Each [`Source`] proposes its top `n`, the union is the candidate set, and
//! every candidate remembers which sources proposed it with which score and rank
//! — the re-ranker's strongest features. Retrieval caps what any re-ranker can
//! do, so evaluation reports the recall of each source and of the union.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::ItemInfo;
use crate::models::topk::sort_best_first;
use crate::models::{Als, Context, Filter, History, Popular, Recommender, Scored};

/// Where a candidate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The user's ALS top items.
    Als,
    /// Items similar (ALS cosine) to the user's most recent items.
    Similar,
    /// The user's own past items (the `history` model).
    History,
    /// Popular overall (the `popular` model).
    Popular,
    /// Popular within the categories of the user's most recent items.
    CategoryPopular,
}

/// Number of sources.
pub const N_SOURCES: usize = 5;

/// Every source, in the order of [`Candidates::scores`]'s columns.
pub const SOURCES: [Source; N_SOURCES] = [
    Source::Als,
    Source::Similar,
    Source::History,
    Source::Popular,
    Source::CategoryPopular,
];

impl Source {
    /// The source's name in configs, reports and feature names.
    pub fn name(self) -> &'static str {
        match self {
            Source::Als => "als",
            Source::Similar => "similar",
            Source::History => "history",
            Source::Popular => "popular",
            Source::CategoryPopular => "category_popular",
        }
    }

    /// Column of this source in [`Candidates::scores`] and [`Candidates::ranks`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// `[models.two_stage.candidates]`: how many items each source proposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CandidateConfig {
    /// ALS top-N.
    pub als: usize,
    /// Items similar to the user's recent items.
    pub similar: usize,
    /// The user's own items.
    pub history: usize,
    /// Popular overall.
    pub popular: usize,
    /// Popular in the user's recent categories.
    pub category_popular: usize,
    /// How many of the user's latest distinct items name the "recent categories".
    pub recent_items: usize,
    /// How many of the user's latest distinct items seed `similar`. Each seed
    /// is scored against the whole catalogue, the dearest step of retrieval.
    pub similar_seeds: usize,
}

impl Default for CandidateConfig {
    fn default() -> Self {
        CandidateConfig {
            als: 50,
            similar: 30,
            history: 50,
            popular: 30,
            category_popular: 30,
            recent_items: 5,
            similar_seeds: 2,
        }
    }
}

impl CandidateConfig {
    /// Items proposed by `source` at most.
    pub fn n(&self, source: Source) -> usize {
        match source {
            Source::Als => self.als,
            Source::Similar => self.similar,
            Source::History => self.history,
            Source::Popular => self.popular,
            Source::CategoryPopular => self.category_popular,
        }
    }
}

/// The single-stage models of one training period, ready to propose candidates.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Popular overall.
    pub popular: Arc<Popular>,
    /// The users' own items.
    pub history: Arc<History>,
    /// ALS factors.
    pub als: Arc<Als>,
    /// Category of every item (dense, `None` = unknown).
    pub item_category: Vec<Option<i64>>,
    /// Popular items per category, best first.
    by_category: HashMap<i64, Vec<Scored>>,
}

impl Sources {
    /// Gather the models; `items` describes every dense item of the period.
    pub fn new(
        popular: Arc<Popular>,
        history: Arc<History>,
        als: Arc<Als>,
        items: &[ItemInfo],
        per_category: usize,
    ) -> Sources {
        let item_category: Vec<Option<i64>> = items.iter().map(|i| i.category).collect();
        let mut by_category: HashMap<i64, Vec<Scored>> = HashMap::new();
        // `popular.ranked` is best first, so each category's list is too.
        for &(item, score) in &popular.ranked {
            if let Some(Some(c)) = item_category.get(item as usize) {
                let list = by_category.entry(*c).or_default();
                if list.len() < per_category {
                    list.push((item, score));
                }
            }
        }
        Sources {
            popular,
            history,
            als,
            item_category,
            by_category,
        }
    }

    /// The popular items of category `category`, best first.
    pub fn popular_in(&self, category: i64) -> &[Scored] {
        self.by_category.get(&category).map_or(&[], Vec::as_slice)
    }
}

/// Candidate lists of a batch of users, CSR-style: user `q`'s candidates are
/// rows `offsets[q]..offsets[q + 1]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidates {
    /// Row ranges per user of the batch.
    pub offsets: Vec<usize>,
    /// Candidate item (dense) of each row.
    pub items: Vec<u32>,
    /// Each source's score for the row's item; NaN where it did not propose it.
    pub scores: Vec<[f32; N_SOURCES]>,
    /// Each source's 1-based rank for the row's item; NaN where it did not propose it.
    pub ranks: Vec<[f32; N_SOURCES]>,
}

impl Candidates {
    /// Rows of the `q`-th user of the batch.
    pub fn rows(&self, q: usize) -> Range<usize> {
        self.offsets[q]..self.offsets[q + 1]
    }

    /// Number of users in the batch.
    pub fn users(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Total number of candidate rows.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// A new set holding, for each user `q` of the result, rows `rows[q]` of
    /// `self` (in that order).
    pub fn select(&self, rows: &[Vec<usize>]) -> Candidates {
        let mut out = Candidates {
            offsets: vec![0],
            ..Candidates::default()
        };
        for user_rows in rows {
            for &r in user_rows {
                out.items.push(self.items[r]);
                out.scores.push(self.scores[r]);
                out.ranks.push(self.ranks[r]);
            }
            out.offsets.push(out.items.len());
        }
        out
    }

    /// True when no user has a candidate.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Candidates for the shoppers of `ctxs`, each list allowed by the matching
/// filter. ALS, history, popular and category-popular propose their best `n`
/// allowed items; similar items are the seeds' nearest neighbours, of which
/// the allowed ones stay.
pub fn generate(
    sources: &Sources,
    ctxs: &[Context],
    filters: &[Filter],
    config: &CandidateConfig,
) -> Candidates {
    assert_eq!(ctxs.len(), filters.len(), "one filter per context");
    let recent: Vec<Vec<u32>> = ctxs
        .iter()
        .map(|c| c.recent_items(config.recent_items))
        .collect();
    let als_lists = if config.als == 0 {
        vec![Vec::new(); ctxs.len()]
    } else if ctxs.len() == 1 {
        // One request: on the calling thread, no hand-off to the pool.
        vec![sources.als.recommend(&ctxs[0], config.als, &filters[0])]
    } else {
        sources.als.recommend_batch(ctxs, config.als, filters)
    };
    // Similar items of every distinct recent item, in one batched product.
    let seeds_of = |q: usize| &recent[q][..recent[q].len().min(config.similar_seeds)];
    let mut seeds: Vec<u32> = (0..ctxs.len()).flat_map(seeds_of).copied().collect();
    seeds.sort_unstable();
    seeds.dedup();
    let similar: HashMap<u32, Vec<Scored>> = if config.similar > 0 {
        let lists = sources.als.similar_items_batch(&seeds, config.similar);
        seeds.iter().copied().zip(lists).collect()
    } else {
        HashMap::new()
    };

    let mut out = Candidates {
        offsets: vec![0],
        ..Candidates::default()
    };
    for (q, ctx) in ctxs.iter().enumerate() {
        let filter = &filters[q];
        let mut lists: [Vec<Scored>; N_SOURCES] = Default::default();
        lists[Source::Als.index()] = als_lists[q].clone();
        let mut near = merge_best(
            seeds_of(q)
                .iter()
                .filter_map(|i| similar.get(i).map(Vec::as_slice)),
            config.similar,
        );
        near.retain(|s| filter.allows(s.0));
        lists[Source::Similar.index()] = near;
        lists[Source::History.index()] = sources.history.recommend(ctx, config.history, filter);
        lists[Source::Popular.index()] = sources.popular.recommend(ctx, config.popular, filter);
        let mut categories: Vec<i64> = recent[q]
            .iter()
            .filter_map(|&i| sources.item_category.get(i as usize).copied().flatten())
            .collect();
        categories.dedup();
        lists[Source::CategoryPopular.index()] = merge_best(
            categories.iter().map(|&c| sources.popular_in(c)),
            usize::MAX,
        )
        .into_iter()
        .filter(|s| filter.allows(s.0))
        .take(config.category_popular)
        .collect();
        push_union(&mut out, &lists);
    }
    out
}

/// The best `n` of several scored lists, an item keeping its best score.
fn merge_best<'a>(lists: impl Iterator<Item = &'a [Scored]>, n: usize) -> Vec<Scored>
where
    Vec<Scored>: 'a,
{
    let mut best: HashMap<u32, f32> = HashMap::new();
    for list in lists {
        for &(item, score) in list {
            let e = best.entry(item).or_insert(f32::NEG_INFINITY);
            *e = e.max(score);
        }
    }
    let mut merged: Vec<Scored> = best.into_iter().collect();
    sort_best_first(&mut merged);
    merged.truncate(n);
    merged
}

/// Append one user's union of `lists` (one per source, best first) to `out`.
fn push_union(out: &mut Candidates, lists: &[Vec<Scored>; N_SOURCES]) {
    let start = out.items.len();
    let mut row_of: HashMap<u32, usize> = HashMap::new();
    for (s, list) in lists.iter().enumerate() {
        for (rank, &(item, score)) in list.iter().enumerate() {
            let row = *row_of.entry(item).or_insert_with(|| {
                out.items.push(item);
                out.scores.push([f32::NAN; N_SOURCES]);
                out.ranks.push([f32::NAN; N_SOURCES]);
                out.items.len() - 1
            });
            debug_assert!(row >= start);
            out.scores[row][s] = score;
            out.ranks[row][s] = (rank + 1) as f32;
        }
    }
    out.offsets.push(out.items.len());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{EventKind, EventLog, TrainSet};
    use crate::models::factors::Factors;
    use crate::models::{AlsConfig, HistoryConfig, PopularConfig};

    fn ctx(train: &TrainSet, user: Option<u32>) -> Context<'_> {
        Context::new(train, user, &[])
    }

    fn setup() -> (TrainSet, Sources) {
        let day = crate::data::time::DAY_MS;
        let mut log = EventLog::default();
        // Visitor 1 views items 10, 11, then 12; visitor 2 carts 13 twice.
        log.push(day, 1, EventKind::View, 10);
        log.push(2 * day, 1, EventKind::View, 11);
        log.push(3 * day, 1, EventKind::View, 12);
        log.push(3 * day, 2, EventKind::AddToCart, 13);
        log.push(4 * day, 2, EventKind::AddToCart, 13);
        log.push(4 * day, 2, EventKind::View, 14);
        log.sort_dedup();
        let train = TrainSet::new(&log, 5 * day);
        let popular = Popular::fit(&train, &PopularConfig::default());
        let history = History::fit(&train, &HistoryConfig::default());
        // Two-dimensional factors: items 10..12 point one way, 13, 14 the other.
        let item = |raw| train.items.get(raw).unwrap() as usize;
        let mut items = Factors::zeros(train.items.len(), 2);
        for raw in [10, 11, 12] {
            items.data[item(raw) * 2] = 1.0;
        }
        for raw in [13, 14] {
            items.data[item(raw) * 2 + 1] = 1.0;
        }
        let mut users = Factors::zeros(train.users.len(), 2);
        users.data[train.users.get(1).unwrap() as usize * 2] = 1.0;
        users.data[train.users.get(2).unwrap() as usize * 2 + 1] = 1.0;
        let als = Als::from_factors(users, items, AlsConfig::default());
        let mut info = vec![ItemInfo::default(); train.items.len()];
        info[item(12)].category = Some(7);
        info[item(13)].category = Some(7);
        let sources = Sources::new(
            Arc::new(popular),
            Arc::new(history),
            Arc::new(als),
            &info,
            10,
        );
        (train, sources)
    }

    #[test]
    fn the_union_keeps_each_sources_rank_and_score() {
        let (train, sources) = setup();
        let u1 = train.users.get(1);
        let config = CandidateConfig::default();
        let c = generate(
            &sources,
            &[ctx(&train, u1), ctx(&train, None)],
            &[Filter::none(), Filter::none()],
            &config,
        );
        assert_eq!(c.users(), 2);
        let item = |raw| train.items.get(raw).unwrap();
        let rows = c.rows(0);
        let row_of = |raw| rows.clone().find(|&r| c.items[r] == item(raw)).unwrap();
        // Item 12 is the most recent: history ranks it first.
        assert_eq!(c.ranks[row_of(12)][Source::History.index()], 1.0);
        // Item 13 was never seen by visitor 1: only popular sources propose it.
        let r13 = row_of(13);
        assert!(c.scores[r13][Source::History.index()].is_nan());
        assert_eq!(c.ranks[r13][Source::Popular.index()], 1.0);
        // Category 7 holds 12 and 13; 13 is the more popular.
        assert_eq!(c.ranks[r13][Source::CategoryPopular.index()], 1.0);
        // Items similar to 12 (the newest) are 10 and 11.
        assert!(c.scores[row_of(10)][Source::Similar.index()] > 0.99);
        // No item appears twice.
        let mut items: Vec<u32> = c.items[rows.clone()].to_vec();
        items.sort_unstable();
        items.dedup();
        assert_eq!(items.len(), rows.len());
        // A cold user gets popular items only.
        let cold = c.rows(1);
        assert!(!cold.is_empty());
        // A filter removes an item from every source.
        let refuse = Filter::excluding(vec![item(13), item(10)]);
        let f = generate(&sources, &[ctx(&train, u1)], &[refuse], &config);
        assert!(f.items.iter().all(|&i| i != item(13) && i != item(10)));
        assert!(!f.is_empty());
        for r in cold {
            assert!(!c.ranks[r][Source::Popular.index()].is_nan());
            assert!(c.ranks[r][Source::Als.index()].is_nan());
        }
    }

    #[test]
    fn each_source_respects_its_n() {
        let (train, sources) = setup();
        let config = CandidateConfig {
            als: 1,
            similar: 1,
            history: 1,
            popular: 1,
            category_popular: 1,
            recent_items: 1,
            similar_seeds: 1,
        };
        let c = generate(
            &sources,
            &[ctx(&train, train.users.get(1))],
            &[Filter::none()],
            &config,
        );
        for s in SOURCES {
            let proposed = c.ranks.iter().filter(|r| !r[s.index()].is_nan()).count();
            assert!(proposed <= 1, "{} proposed {proposed}", s.name());
        }
        assert!(c.len() <= N_SOURCES);
    }
}
