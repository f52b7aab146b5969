//! `two_stage`: candidates from the single-stage models, re-ranked by a GBDT.
//!
//! ## Training protocol
//! The re-ranker must learn from data shaped like what it will score, without
//! seeing the future. The training period (everything before the test cutoff
//! `C`) is split once more: the last `label_days` before `C` are the *label
//! window*; popular, history and ALS are refitted on the events before it,
//! candidates and features are built as of the window's start, and a candidate
//! is positive when the user's events in the window make it relevant under the
//! split's protocol (an add-to-cart under `strict`). With `label_windows > 1`
//! the same is repeated for earlier windows (each `label_days` long, stepping
//! back) and the groups are stacked — more users to learn from on small data.
//!
//! Users whose candidates hold no positive teach a ranking objective nothing and
//! are skipped (under the binary objective they stay, as all-negative rows).
//! `max_negatives` > 0 keeps only that many negatives per user, drawn with the
//! seed; 0 keeps all.
//!
//! Candidates are built, filtered by the business rules and featurised the same
//! way in training and at request time: from a shopper [`Context`] (in training,
//! the label users of a period with no new events; at request time, a shopper
//! with their training events and whatever they did since), so the re-ranker
//! scores live what it learnt on.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::candidates::{generate, CandidateConfig, Candidates, Sources, SOURCES};
use super::features::{feature_names, n_features, FeatureContext};
use super::gbdt::{Booster, Dataset, GbdtConfig, Objective};
use crate::data::time::{format_date, DAY_MS};
use crate::data::{
    ground_truth, interaction_matrix, split, EventLog, ItemFeatures, ItemInfo, Protocol, TestUser,
    TrainSet,
};
use crate::models::{
    Als, AlsConfig, Context, Filter, History, HistoryConfig, Popular, PopularConfig, Ranked,
    Recommender, RequestRules, Rules, RulesConfig, Scored,
};
use crate::progress;
use crate::rng::Rng;

/// `[models.two_stage]`: candidates, training protocol and re-ranker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwoStageConfig {
    /// Length of the label window, in days before the test cutoff.
    pub label_days: u32,
    /// Label windows stacked, each `label_days` long, stepping back in time.
    pub label_windows: usize,
    /// No further window is stacked once the table holds this many users'
    /// groups (0: always `label_windows`). Each window refits every candidate
    /// model on its period, the costliest step of training; a large shop's
    /// first window already holds more users than a small shop's three.
    pub enough_groups: usize,
    /// Negatives kept per user (drawn with `seed`); 0 keeps all.
    pub max_negatives: usize,
    /// Grade labels (LambdaRank only): 2 = relevant, 1 = touched in the label
    /// window without counting as relevant (e.g. only viewed under `strict`),
    /// 0 = neither. Off: 1 = relevant, 0 = not.
    pub graded_labels: bool,
    /// Seed of sampling, the validation split and the trees.
    pub seed: u64,
    /// Share of the training users held out to validate (early stopping).
    pub valid_fraction: f64,
    /// `[models.two_stage.candidates]`.
    pub candidates: CandidateConfig,
    /// `[models.two_stage.reranker]`: the gradient-boosted trees.
    pub reranker: GbdtConfig,
}

impl Default for TwoStageConfig {
    fn default() -> Self {
        TwoStageConfig {
            label_days: 31,
            label_windows: 3,
            enough_groups: 30_000,
            max_negatives: 40,
            graded_labels: true,
            seed: 42,
            valid_fraction: 0.2,
            candidates: CandidateConfig::default(),
            // Smaller, slower-learning trees than LightGBM's defaults: the
            // label windows of small shops hold few users.
            reranker: GbdtConfig {
                num_trees: 300,
                learning_rate: 0.05,
                num_leaves: 15,
                lambda_l2: 1.0,
                feature_fraction: 0.8,
                early_stopping_rounds: Some(40),
                seed: 42,
                ..GbdtConfig::default()
            },
        }
    }
}

/// The re-ranker's training rows: features, labels and per-user groups.
#[derive(Debug, Clone, Default)]
pub struct TrainingTable {
    /// Row-major features, [`n_features`] columns.
    pub features: Vec<f32>,
    /// 1 for a relevant candidate, else 0 (see `graded_labels` for grades).
    pub labels: Vec<f32>,
    /// Group `g` (one user of one window) is rows `groups[g]..groups[g + 1]`.
    pub groups: Vec<usize>,
    /// Users with events in a label window that the protocol counts.
    pub label_users: usize,
    /// Relevant items of those users known to the period's models.
    pub relevant: usize,
    /// Of which reached by the candidates.
    pub relevant_in_candidates: usize,
    /// Per label window: its start, users, rows and seconds spent.
    pub windows: Vec<serde_json::Value>,
}

impl TrainingTable {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }
}

/// The settings of the three models two_stage draws candidates from.
#[derive(Debug, Clone, Copy)]
pub struct SourceConfigs<'a> {
    /// `[models.popular]`.
    pub popular: &'a PopularConfig,
    /// `[models.history]`.
    pub history: &'a HistoryConfig,
    /// `[models.als]`.
    pub als: &'a AlsConfig,
}

/// The single-stage models two_stage draws candidates from, fitted on `train`
/// as the bundle's are, for the candidates of the users `asked` only: ALS gets
/// the bundle's neighbour table (so similar-item candidates come from where
/// the service takes them), limited to the items those users touched, the
/// only seeds their candidates can have, and the index the service builds.
/// `label` names the progress bars.
pub fn fit_sources(
    train: &TrainSet,
    asked: &[u32],
    configs: SourceConfigs,
    items: &[ItemInfo],
    candidates: &CandidateConfig,
    label: &str,
) -> Result<Sources> {
    let popular = Popular::fit(train, configs.popular);
    let history = History::fit(train, configs.history);
    let matrix = interaction_matrix(train, &configs.als.weights);
    let bar = progress::bar(configs.als.iterations as u64, label);
    let als = Als::fit(&matrix, configs.als, |_, _| bar.inc(1));
    bar.finish_and_clear();
    // Only the fit reads the matrix; the index and neighbours come next.
    drop(matrix);
    let mut als = als.with_context(|| format!("training {label}"))?;
    let mut keep = vec![false; train.users.len()];
    asked.iter().for_each(|&u| keep[u as usize] = true);
    als.keep_users(&keep);
    drop(keep);
    let mut touched = vec![false; train.items.len()];
    for &u in asked {
        let events = train.user_offsets[u as usize]..train.user_offsets[u as usize + 1];
        for &item in &train.item[events] {
            touched[item as usize] = true;
        }
    }
    let seeds = touched.iter().filter(|&&t| t).count();
    // The service answers ALS candidates from the index (an exact pass
    // would score every label user against every item).
    let started = Instant::now();
    als.build_index();
    tracing::info!(
        "{label}: index built in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let bar = progress::bar(seeds as u64, &format!("{label}: similar items"));
    als.keep_neighbours(Some(&touched), |m| bar.inc(m as u64));
    bar.finish_and_clear();
    Ok(Sources::new(
        Arc::new(popular),
        Arc::new(history),
        Arc::new(als),
        items,
        candidates.category_popular,
    ))
}

/// Build the re-ranker's training rows from `train` (the events before the test
/// cutoff `cutoff_ms`, as split under `protocol`); candidates obey `rules` as
/// they will when served.
pub fn training_table(
    train: &EventLog,
    cutoff_ms: i64,
    protocol: Protocol,
    item_features: Option<&ItemFeatures>,
    sources: SourceConfigs,
    rules: &RulesConfig,
    config: &TwoStageConfig,
) -> Result<TrainingTable> {
    let mut table = TrainingTable {
        groups: vec![0],
        ..TrainingTable::default()
    };
    let ranking = matches!(config.reranker.objective, Objective::LambdaRank { .. });
    let mut rng = Rng::new(config.seed);
    let window_ms = i64::from(config.label_days) * DAY_MS;
    for w in 0..config.label_windows.max(1) {
        if config.enough_groups > 0 && table.groups.len() > config.enough_groups {
            break;
        }
        let label_end = cutoff_ms - w as i64 * window_ms;
        let label_start = label_end - window_ms;
        let inner = split(train, label_start, protocol);
        if inner.train.is_empty() {
            break;
        }
        let labels = inner
            .test
            .filter(|i| inner.test.timestamp_ms[i] < label_end);
        let period = Arc::new(TrainSet::new(&inner.train, label_start));
        // The split's copy of the log is indexed now; at ten times
        // RetailRocket it is 0.7 GB that the window's models would sit on.
        drop(inner);
        let items = Arc::new(
            item_features
                .map(|f| f.dense(&period.items, label_start))
                .unwrap_or_else(|| vec![Default::default(); period.items.len()]),
        );
        let mut truth = ground_truth(&labels, &period.users, &period.items, protocol);
        // Items each label user touched in the window (any kind), for graded labels.
        let mut touched: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        if config.graded_labels {
            for i in 0..labels.len() {
                if let Some(item) = period.items.get(labels.item[i]) {
                    touched.entry(labels.visitor[i]).or_default().push(item);
                }
            }
            touched.values_mut().for_each(|v| {
                v.sort_unstable();
                v.dedup();
            });
            // Users who only touched items are label users too.
            let known: HashSet<i64> = truth.iter().map(|t| t.visitor).collect();
            for (&visitor, _) in touched.iter().filter(|(v, _)| !known.contains(v)) {
                let user = period.users.get(visitor);
                if protocol == Protocol::Reference && user.is_none() {
                    continue;
                }
                truth.push(TestUser {
                    visitor,
                    user,
                    relevant: Vec::new(),
                    n_relevant: 0,
                });
            }
        }
        table.label_users += truth.len();
        for user in &truth {
            table.relevant += user.relevant.len();
        }
        let touched_of = |visitor: i64| touched.get(&visitor).map_or(&[][..], Vec::as_slice);
        // A user with no relevant or touched item known to the period cannot
        // have a positive candidate: under a ranking objective they teach nothing.
        if ranking {
            truth.retain(|u| !u.relevant.is_empty() || !touched_of(u.visitor).is_empty());
        }
        // A label user the period never saw has an empty context, and the
        // engine answers empty contexts with popular items, never with the
        // re-ranker: such users teach it nothing it will use.
        truth.retain(|u| u.user.is_some());
        if truth.is_empty() {
            continue;
        }
        let started = Instant::now();
        let asked: Vec<u32> = truth.iter().filter_map(|t| t.user).collect();
        let fitted = fit_sources(
            &period,
            &asked,
            sources,
            &items,
            &config.candidates,
            &format!("two_stage: als for label window {}", w + 1),
        )?;
        let models_seconds = started.elapsed().as_secs_f64();

        let started = Instant::now();
        let users: Vec<Option<u32>> = truth.iter().map(|t| t.user).collect();
        let ctxs: Vec<Context> = users
            .iter()
            .map(|&u| Context::new(&period, u, &[]))
            .collect();
        let period_rules = Rules::new(rules.clone(), &items);
        let filters: Vec<Filter> = ctxs
            .iter()
            .map(|c| period_rules.filter(c, &RequestRules::default()))
            .collect();
        let candidates = generate(&fitted, &ctxs, &filters, &config.candidates);
        let candidates_seconds = started.elapsed().as_secs_f64();
        // Label every candidate, then keep the rows that train.
        let mut kept_users: Vec<Context> = Vec::new();
        let mut kept_rows: Vec<Vec<usize>> = Vec::new();
        let mut kept_labels = Vec::new();
        for (q, user) in truth.iter().enumerate() {
            let rows = candidates.rows(q);
            let user_touched = touched_of(user.visitor);
            let label = |r: usize| {
                let item = candidates.items[r];
                if user.relevant.binary_search(&item).is_ok() {
                    if config.graded_labels {
                        2.0
                    } else {
                        1.0
                    }
                } else if user_touched.binary_search(&item).is_ok() {
                    1.0
                } else {
                    0.0
                }
            };
            table.relevant_in_candidates += rows
                .clone()
                .filter(|&r| user.relevant.binary_search(&candidates.items[r]).is_ok())
                .count();
            let mut keep: Vec<usize> = rows.clone().filter(|&r| label(r) > 0.0).collect();
            if keep.is_empty() && ranking {
                continue;
            }
            let mut negatives: Vec<usize> = rows.clone().filter(|&r| label(r) == 0.0).collect();
            if config.max_negatives > 0 && negatives.len() > config.max_negatives {
                let pick = rng.sample_sorted(negatives.len(), config.max_negatives);
                negatives = pick.into_iter().map(|i| negatives[i]).collect();
            }
            keep.extend(negatives);
            keep.sort_unstable();
            kept_labels.extend(keep.iter().map(|&r| label(r)));
            kept_users.push(ctxs[q]);
            kept_rows.push(keep);
        }
        // Features only for the rows that train.
        let started = Instant::now();
        let kept = candidates.select(&kept_rows);
        let context = FeatureContext::new(period.clone(), items, config.candidates.recent_items);
        table.features.extend(context.build(&kept_users, &kept));
        for q in 0..kept.users() {
            table.labels.extend_from_slice(&kept_labels[kept.rows(q)]);
            table.groups.push(table.labels.len());
        }
        table.windows.push(json!({
            "label_start": format_date(label_start),
            "label_users": users.len(),
            "groups": kept.users(),
            "rows": kept.len(),
            "seconds": {
                "models": models_seconds,
                "candidates": candidates_seconds,
                "features": started.elapsed().as_secs_f64(),
            },
        }));
    }
    Ok(table)
}

/// What fitting the re-ranker found, for the bundle manifest and `train`'s output.
pub fn fit_reranker(
    table: TrainingTable,
    config: &TwoStageConfig,
) -> Result<(Booster, serde_json::Value)> {
    anyhow::ensure!(
        table.groups.len() > 1,
        "two_stage: no user in the label window has a relevant item among the candidates \
         ({} users with label events); use more data, a longer `label_days` or more `label_windows`",
        table.label_users
    );
    let names: Vec<String> = feature_names().to_vec();
    let rows = table.rows();
    let groups = table.groups.len() - 1;
    let positives = table.labels.iter().filter(|&&l| l > 0.0).count();
    let data = Dataset::new(names, table.features, table.labels, table.groups)
        .context("two_stage: building the training table")?;
    let (fit, valid) = data.split_groups(config.valid_fraction, config.seed);
    let gbdt = &config.reranker;
    let bar = progress::bar(gbdt.num_trees as u64, "two_stage: re-ranker trees");
    let mut curve = Vec::new();
    let started = Instant::now();
    let valid = (valid.n_groups() > 0).then_some(&valid);
    let booster = Booster::fit(&fit, valid, gbdt, |round| {
        bar.inc(1);
        curve.push(round.valid_metric);
    });
    bar.finish_and_clear();
    let booster = booster.context("two_stage: fitting the re-ranker")?;
    let facts = json!({
        "rows": rows,
        "groups": groups,
        "positives": positives,
        "label_users": table.label_users,
        "label_candidate_recall": table.relevant_in_candidates as f64 / table.relevant.max(1) as f64,
        "trees": booster.n_trees(),
        "fit_seconds": started.elapsed().as_secs_f64(),
        "windows": table.windows,
        "valid_curve": curve,
    });
    Ok((booster, facts))
}

/// The two-stage recommender: candidates from [`Sources`], scored by a [`Booster`].
#[derive(Debug, Clone)]
pub struct TwoStage {
    /// Settings it was trained with.
    pub config: TwoStageConfig,
    /// The re-ranker.
    pub booster: Booster,
    /// Candidate sources of the whole training period.
    pub sources: Sources,
    /// Features as of the end of the training period.
    pub context: FeatureContext,
}

impl TwoStage {
    /// Assemble the model for the period `train` (whose dense items `items`
    /// describes) from its single-stage models and a fitted re-ranker.
    pub fn new(
        config: TwoStageConfig,
        booster: Booster,
        (popular, history, als): (Arc<Popular>, Arc<History>, Arc<Als>),
        train: Arc<TrainSet>,
        items: Arc<Vec<ItemInfo>>,
    ) -> TwoStage {
        let sources = Sources::new(
            popular,
            history,
            als,
            &items,
            config.candidates.category_popular,
        );
        let context = FeatureContext::new(train, items, config.candidates.recent_items);
        TwoStage {
            config,
            booster,
            sources,
            context,
        }
    }

    /// The re-ranker's gain importance as `[{"feature": …, "gain": …}, …]`, best first.
    pub fn importance_json(&self) -> serde_json::Value {
        json!(self
            .booster
            .feature_importance()
            .into_iter()
            .map(|(feature, gain)| json!({"feature": feature, "gain": gain}))
            .collect::<Vec<_>>())
    }

    /// The training period the model describes (its shoppers' past events).
    pub fn train(&self) -> &TrainSet {
        &self.context.train
    }

    /// Candidates of the shoppers of `ctxs`, each allowed by its filter.
    pub fn candidates(&self, ctxs: &[Context], filters: &[Filter]) -> Candidates {
        generate(&self.sources, ctxs, filters, &self.config.candidates)
    }

    /// Candidates with the re-ranker's score of each row.
    pub fn score(&self, ctxs: &[Context], filters: &[Filter]) -> (Candidates, Vec<f32>) {
        let candidates = self.candidates(ctxs, filters);
        let features = self.context.build(ctxs, &candidates);
        let scores = self.booster.predict(&features, n_features());
        (candidates, scores)
    }

    /// The `n` best rows of shopper `q` of a scored batch, best first (ties
    /// to the lower item index, as everywhere).
    fn best_rows(candidates: &Candidates, scores: &[f32], q: usize, n: usize) -> Vec<(usize, f32)> {
        let items = &candidates.items;
        let mut rows: Vec<(usize, f32)> = candidates.rows(q).map(|r| (r, scores[r])).collect();
        rows.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(items[a.0].cmp(&items[b.0])));
        rows.truncate(n);
        rows
    }
}

/// With nothing known about the shopper there is nothing to re-rank for:
/// two_stage answers nobody (the engine fills the answer with popular items),
/// in evaluation and in service alike.
impl Recommender for TwoStage {
    fn name(&self) -> &'static str {
        "two_stage"
    }

    fn recommend(&self, ctx: &Context, n: usize, filter: &Filter) -> Vec<Scored> {
        self.explain(ctx, n, filter)
            .into_iter()
            .map(|r| (r.item, r.score))
            .collect()
    }

    fn recommend_batch(&self, ctxs: &[Context], n: usize, filters: &[Filter]) -> Vec<Vec<Scored>> {
        assert_eq!(ctxs.len(), filters.len(), "one filter per context");
        // Bounded batches keep the feature table small whatever the number of shoppers.
        const BATCH: usize = 4096;
        let asked: Vec<usize> = (0..ctxs.len()).filter(|&q| !ctxs[q].is_empty()).collect();
        let mut out = vec![Vec::new(); ctxs.len()];
        for chunk in asked.chunks(BATCH) {
            let batch: Vec<Context> = chunk.iter().map(|&q| ctxs[q]).collect();
            let batch_filters: Vec<Filter> = chunk.iter().map(|&q| filters[q].clone()).collect();
            let (candidates, scores) = self.score(&batch, &batch_filters);
            for (j, &q) in chunk.iter().enumerate() {
                out[q] = TwoStage::best_rows(&candidates, &scores, j, n)
                    .into_iter()
                    .map(|(r, s)| (candidates.items[r], s))
                    .collect();
            }
        }
        out
    }

    fn explain(&self, ctx: &Context, n: usize, filter: &Filter) -> Vec<Ranked> {
        if ctx.is_empty() {
            return Vec::new();
        }
        let (candidates, scores) =
            self.score(std::slice::from_ref(ctx), std::slice::from_ref(filter));
        TwoStage::best_rows(&candidates, &scores, 0, n)
            .into_iter()
            .map(|(r, score)| Ranked {
                item: candidates.items[r],
                score,
                sources: SOURCES
                    .iter()
                    .filter(|s| !candidates.ranks[r][s.index()].is_nan())
                    .map(|s| s.name())
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::time::parse_date_ms;
    use crate::data::{load_events, load_item_features, BadRows, EventKind};

    /// The embedded RetailRocket extract, split at 2015-09-01.
    fn embedded() -> (EventLog, i64, ItemFeatures) {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let log = load_events(&root.join("data/events_u100_i300.csv"), BadRows::Error)
            .unwrap()
            .log;
        let items = load_item_features(&root.join("data/item_features.csv")).unwrap();
        let cutoff = parse_date_ms("2015-09-01").unwrap();
        (split(&log, cutoff, Protocol::Strict).train, cutoff, items)
    }

    /// The training table of `train` (strict protocol, small ALS) under `config`.
    fn table(
        train: &EventLog,
        cutoff: i64,
        items: &ItemFeatures,
        config: &TwoStageConfig,
    ) -> TrainingTable {
        let als = AlsConfig {
            factors: 16,
            iterations: 5,
            ..AlsConfig::default()
        };
        let sources = SourceConfigs {
            popular: &PopularConfig::default(),
            history: &HistoryConfig::default(),
            als: &als,
        };
        training_table(
            train,
            cutoff,
            Protocol::Strict,
            Some(items),
            sources,
            &RulesConfig::default(),
            config,
        )
        .unwrap()
    }

    #[test]
    fn no_feature_reads_an_event_of_the_label_window() {
        let (train, cutoff, items) = embedded();
        // Ungraded, so that label-window views change no label (see below).
        let config = TwoStageConfig {
            graded_labels: false,
            ..TwoStageConfig::default()
        };
        let before = table(&train, cutoff, &items, &config);
        assert!(before.groups.len() > 1, "the extract has label users");
        // Views and purchases in the label window change no label under the
        // strict protocol; if any feature read them, the table would change.
        let label_start = cutoff - i64::from(config.label_days) * DAY_MS;
        let mut perturbed = train.clone();
        for i in 0..train.len() {
            if train.timestamp_ms[i] >= label_start {
                let t = train.timestamp_ms[i];
                perturbed.push(t, train.visitor[i], EventKind::View, train.item[i]);
                perturbed.push(
                    t + 1,
                    train.visitor[i],
                    EventKind::Transaction,
                    train.item[0],
                );
            }
        }
        perturbed.sort_dedup();
        assert!(perturbed.len() > train.len());
        let after = table(&perturbed, cutoff, &items, &config);
        assert_eq!(before.labels, after.labels);
        assert_eq!(before.groups, after.groups);
        let same = before
            .features
            .iter()
            .zip(&after.features)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same && before.features.len() == after.features.len());
    }

    #[test]
    fn groups_hold_a_positive_and_negatives_are_capped() {
        let (train, cutoff, items) = embedded();
        let config = TwoStageConfig {
            max_negatives: 7,
            label_windows: 2,
            ..TwoStageConfig::default()
        };
        let table = table(&train, cutoff, &items, &config);
        assert_eq!(table.features.len(), table.rows() * n_features());
        for g in table.groups.windows(2) {
            let labels = &table.labels[g[0]..g[1]];
            let positives = labels.iter().filter(|&&l| l > 0.0).count();
            assert!(positives >= 1);
            assert!(labels.len() - positives <= 7);
        }
        let groups = table.groups.len() - 1;
        let (booster, facts) = fit_reranker(table, &config).unwrap();
        assert!(booster.n_trees() >= 1);
        assert_eq!(facts["groups"], groups);
    }

    #[test]
    fn the_binary_objective_keeps_users_without_positives() {
        let (train, cutoff, items) = embedded();
        let mut config = TwoStageConfig {
            graded_labels: false,
            label_windows: 1,
            ..TwoStageConfig::default()
        };
        let ranked = table(&train, cutoff, &items, &config);
        config.reranker.objective = Objective::Binary;
        let binary = table(&train, cutoff, &items, &config);
        assert!(binary.groups.len() > ranked.groups.len());
        let all_negative = binary
            .groups
            .windows(2)
            .filter(|g| binary.labels[g[0]..g[1]].iter().all(|&l| l == 0.0))
            .count();
        assert!(all_negative > 0);
        let (booster, _) = fit_reranker(binary, &config).unwrap();
        assert_eq!(booster.objective(), Objective::Binary);
    }
}
