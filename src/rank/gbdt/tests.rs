//! Tests of the gbdt module: behaviour a caller relies on (it learns planted
//! structure, honours its limits, is deterministic, round-trips), plus the
//! internals whose failure would be silent (hand-computed LambdaMART gradients,
//! the subtraction trick, the partition).

use super::bins::{BinMapper, BinnedData};
use super::hist::{self, GradPair, HistBin, Rows};
use super::learner::partition;
use super::objective::{self, LambdaRank, RankTable};
use super::tree::Child;
use super::*;
use crate::rng::Rng;

/// Rows of groups of `size` items with six features; relevance is planted in
/// an additive term, an interaction and a non-monotone term, plus noise. The
/// two most relevant items of a group get label 2, the next three label 1.
fn planted_ranking(n_groups: usize, size: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    let nf = 6;
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut offsets = vec![0];
    for _ in 0..n_groups {
        let mut latent = Vec::with_capacity(size);
        for _ in 0..size {
            let x: Vec<f32> = (0..nf).map(|_| rng.next_f64() as f32).collect();
            let l = 1.0 * x[0] as f64 + 2.0 * (x[1] * x[2]) as f64
                - 3.0 * ((x[3] - 0.5) as f64).powi(2)
                + noise * (rng.next_f64() - 0.5);
            latent.push(l);
            features.extend_from_slice(&x);
        }
        let mut order: Vec<usize> = (0..size).collect();
        order.sort_by(|&a, &b| latent[b].total_cmp(&latent[a]));
        let mut group_labels = vec![0f32; size];
        for (rank, &i) in order.iter().enumerate() {
            group_labels[i] = match rank {
                0 | 1 => 2.0,
                2..=4 => 1.0,
                _ => 0.0,
            };
        }
        labels.extend(group_labels);
        offsets.push(labels.len());
    }
    let names = (0..nf).map(|f| format!("x{f}")).collect();
    Dataset::new(names, features, labels, offsets).unwrap()
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|f| format!("x{f}")).collect()
}

fn quiet(_: RoundInfo) {}

fn scores_of(model: &Booster, data: &Dataset) -> Vec<f32> {
    model.predict(data.features(), data.n_features())
}

fn ndcg10(data: &Dataset, scores: &[f32]) -> f64 {
    mean_ndcg_at(10, data.labels(), scores, data.group_offsets()).unwrap()
}

#[test]
fn a_planted_step_is_found_at_its_exact_position() {
    // x on a grid of 100 values, label 1 above 0.3: one split must cut
    // between 0.30 and 0.31, at the midpoint bound 0.305.
    let n = 1000;
    let xs: Vec<f32> = (0..n).map(|i| (i % 100) as f32 / 100.0).collect();
    let labels: Vec<f32> = xs.iter().map(|&x| (x > 0.3) as i32 as f32).collect();
    let data = Dataset::single_group(names(1), xs, labels).unwrap();
    let config = GbdtConfig {
        objective: Objective::Binary,
        num_trees: 1,
        num_leaves: 8,
        min_data_in_leaf: 1,
        learning_rate: 1.0,
        ..GbdtConfig::default()
    };
    let model = Booster::fit(&data, None, &config, quiet).unwrap();
    // Both sides are pure, so no further split gains anything: the tree
    // stops at one split although it may have eight leaves.
    assert_eq!(model.trees[0].nodes.len(), 1);
    let root = model.trees[0].nodes[0];
    assert_eq!(root.feature(), 0);
    assert!(
        root.threshold > 0.30 && root.threshold < 0.31,
        "threshold {}",
        root.threshold
    );
    assert!(
        (root.threshold - 0.305).abs() < 1e-6,
        "threshold {}",
        root.threshold
    );
    // Below the step scores low, above it high, and the two sides are flat.
    let at = |x: f32| model.predict_row(&[x]);
    assert!(at(0.0) < 0.0 && at(0.3) < 0.0);
    assert!(at(0.31) > 0.0 && at(0.99) > 0.0);
    assert_eq!(at(0.0), at(0.3));
    assert_eq!(at(0.31), at(0.99));
    // The base score is the log-odds of the mean label (69 of 100 grid
    // values are above 0.3), kept to f32 precision.
    assert!((model.base_score() - (0.69f64 / 0.31).ln()).abs() < 1e-6);
}

#[test]
fn lambdarank_improves_ndcg_well_above_random_and_a_single_feature() {
    let train = planted_ranking(400, 40, 0.3, 1);
    let test = planted_ranking(200, 40, 0.3, 2);
    let config = GbdtConfig {
        num_trees: 60,
        num_leaves: 15,
        ..GbdtConfig::default()
    };
    let model = Booster::fit(&train, None, &config, quiet).unwrap();
    let ours = ndcg10(&test, &scores_of(&model, &test));

    let mut rng = Rng::new(3);
    let random: Vec<f32> = (0..test.n_rows()).map(|_| rng.next_f64() as f32).collect();
    let random = ndcg10(&test, &random);
    let best_single = (0..test.n_features())
        .map(|f| {
            let s: Vec<f32> = (0..test.n_rows()).map(|r| test.row(r)[f]).collect();
            ndcg10(&test, &s)
        })
        .fold(0.0, f64::max);
    // Measured: ours ≈ 0.95, best single feature ≈ 0.48, random ≈ 0.16.
    assert!(ours > random + 0.5, "ours {ours} random {random}");
    assert!(
        ours > best_single + 0.3,
        "ours {ours} best single feature {best_single}"
    );
    assert!(ours > 0.9, "ours {ours}");
}

#[test]
fn trees_respect_max_depth_and_min_data_in_leaf() {
    let data = planted_ranking(200, 40, 0.3, 4);
    let base = GbdtConfig {
        num_trees: 10,
        num_leaves: 31,
        ..GbdtConfig::default()
    };
    let limited = GbdtConfig {
        max_depth: Some(3),
        min_data_in_leaf: 150,
        ..base.clone()
    };
    let model = Booster::fit(&data, None, &limited, quiet).unwrap();
    for tree in &model.trees {
        assert!(tree.depth() <= 3, "depth {}", tree.depth());
        assert!(
            tree.leaf_counts.iter().all(|&c| c >= 150),
            "{:?}",
            tree.leaf_counts
        );
        assert_eq!(tree.leaf_counts.iter().sum::<u64>(), data.n_rows() as u64);
    }
    assert!(model.trees.iter().any(|t| t.depth() == 3));
    // Without the limits the same data grows deeper trees and smaller leaves,
    // so the limits above did bind.
    let free = Booster::fit(&data, None, &base, quiet).unwrap();
    assert!(free.trees.iter().any(|t| t.depth() > 3));
    assert!(free
        .trees
        .iter()
        .any(|t| t.leaf_counts.iter().any(|&c| c < 150)));
}

/// Gradients of one group through the public pass (one batch of one group).
fn group_gradients(k: usize, labels: &[f32], scores: &[f64]) -> Vec<GradPair> {
    let offsets = [0, labels.len()];
    let cfg = LambdaRank {
        k,
        sigma: 1.0,
        norm: false,
    };
    let table = RankTable::new(labels, &offsets, k);
    let mut out = vec![GradPair::default(); labels.len()];
    let mut order = table.initial_order();
    objective::lambdarank_gradients(&cfg, &table, &mut order, labels, scores, &mut out);
    out
}

#[test]
fn lambdarank_gradients_match_a_hand_computed_group() {
    // Items A, B, C with labels 2, 0, 1 and scores 0, ln 3, 0.
    // Ranked by score: B (rank 0), A (rank 1), C (rank 2; ties keep row order).
    // Gains 2^l − 1: A 3, B 0, C 1. Discounts 1/log2(2 + r): 1, 0.6309297535714575, 0.5.
    // IDCG@10 = 3·1 + 1·0.6309297535714575 = 3.6309297535714578.
    // Pairs (high, low), ΔNDCG = Δgain · |Δdiscount| / IDCG, ρ = 1/(1 + e^(s_high − s_low)):
    //   (A, B): 3 · 0.3690702464 / IDCG = 0.3049386285142399, ρ = 1/(1 + 1/3) = 3/4
    //   (A, C): 2 · 0.1309297536 / IDCG = 0.0721191333666934, ρ = 1/2
    //   (C, B): 1 · 0.5          / IDCG = 0.1377057761880933, ρ = 3/4
    // g_high −= ρΔ, g_low += ρΔ; h += ρ(1 − ρ)Δ on both:
    //   g = [−(¾·0.30494 + ½·0.07212), ¾·0.30494 + ¾·0.13771, ½·0.07212 − ¾·0.13771]
    //   h = [3/16·0.30494 + ¼·0.07212, 3/16·0.30494 + 3/16·0.13771, ¼·0.07212 + 3/16·0.13771]
    let labels = [2.0, 0.0, 1.0];
    let scores = [0.0, 3f64.ln(), 0.0];
    let got = group_gradients(10, &labels, &scores);
    let want_g = [
        -0.26476353806902664,
        0.33198330352674993,
        -0.0672197654577233,
    ];
    let want_h = [
        0.07520577618809332,
        0.08299582588168748,
        0.04384961637694084,
    ];
    for i in 0..3 {
        assert!(
            (got[i].g as f64 - want_g[i]).abs() < 1e-6,
            "g[{i}] {} want {}",
            got[i].g,
            want_g[i]
        );
        assert!(
            (got[i].h as f64 - want_h[i]).abs() < 1e-6,
            "h[{i}] {} want {}",
            got[i].h,
            want_h[i]
        );
    }

    // Truncated at k = 1: only pairs touching rank 0 (B) count, so (A, C) is
    // dropped, and IDCG@1 = 3:
    //   (A, B): 3 · 0.3690702464 / 3 = 0.36907024642854247, ρ = 3/4
    //   (C, B): 1 · 0.5 / 3          = 0.16666666666666666, ρ = 3/4
    let got = group_gradients(1, &labels, &scores);
    let want_g = [-0.27680268482140685, 0.40180268482140685, -0.125];
    let want_h = [0.06920067120535171, 0.10045067120535171, 0.03125];
    for i in 0..3 {
        assert!(
            (got[i].g as f64 - want_g[i]).abs() < 1e-6,
            "k=1 g[{i}] {}",
            got[i].g
        );
        assert!(
            (got[i].h as f64 - want_h[i]).abs() < 1e-6,
            "k=1 h[{i}] {}",
            got[i].h
        );
    }
}

#[test]
fn groups_with_equal_labels_get_no_gradient() {
    for labels in [[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]] {
        let got = group_gradients(10, &labels, &[0.3, -1.0, 2.0]);
        assert!(
            got.iter().all(|g| g.g == 0.0 && g.h == 0.0),
            "{labels:?}: {got:?}"
        );
    }
    // And such a group changes nothing in the others' gradients.
    let offsets = [0, 3, 6];
    let labels = [1.0, 0.0, 2.0, 0.0, 0.0, 0.0];
    let scores = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
    let cfg = LambdaRank {
        k: 10,
        sigma: 1.0,
        norm: false,
    };
    let mut out = vec![GradPair::default(); 6];
    let table = RankTable::new(&labels, &offsets, 10);
    let mut order = table.initial_order();
    objective::lambdarank_gradients(&cfg, &table, &mut order, &labels, &scores, &mut out);
    assert_eq!(
        &out[..3],
        &group_gradients(10, &labels[..3], &scores[..3])[..]
    );
    assert!(out[3..].iter().all(|g| g.g == 0.0 && g.h == 0.0));
}

#[test]
fn gradients_do_not_depend_on_the_order_kept_from_last_round() {
    // The pass sorts each group starting from the previous round's order;
    // whatever that order is, the gradients must be those of a fresh sort.
    let mut rng = Rng::new(21);
    let offsets = [0, 60, 61, 200];
    let labels: Vec<f32> = (0..200).map(|_| rng.below(3) as f32).collect();
    let scores: Vec<f64> = (0..200).map(|_| (rng.below(20) as f64) / 7.0).collect();
    let cfg = LambdaRank {
        k: 10,
        sigma: 1.0,
        norm: true,
    };
    let table = RankTable::new(&labels, &offsets, 10);
    let run = |order: &mut Vec<u32>| {
        let mut out = vec![GradPair::default(); 200];
        objective::lambdarank_gradients(&cfg, &table, order, &labels, &scores, &mut out);
        out
    };
    let mut fresh = table.initial_order();
    let first = run(&mut fresh);
    // Now `fresh` is sorted; run again from it, and from a scrambled order.
    assert_eq!(run(&mut fresh.clone()), first);
    let mut scrambled = table.initial_order();
    for w in offsets.windows(2) {
        rng.shuffle(&mut scrambled[w[0]..w[1]]);
    }
    assert_eq!(run(&mut scrambled), first);
    assert_eq!(scrambled, fresh);
    assert!(first.iter().any(|g| g.g != 0.0));
}

#[test]
fn ndcg_at_matches_hand_computed_values() {
    // Labels [0, 1, 2] ranked by scores [3, 2, 1]: DCG = 0 + 1/log2 3 + 3/2,
    // ideal = 3 + 1/log2 3.
    let v = ndcg_at(10, &[0.0, 1.0, 2.0], &[3.0f32, 2.0, 1.0]).unwrap();
    let d1 = 1.0 / 3f64.log2();
    assert!((v - (d1 + 1.5) / (3.0 + d1)).abs() < 1e-12);
    // @1 only the first item counts: gain 0.
    assert_eq!(ndcg_at(1, &[0.0, 1.0, 2.0], &[3.0f32, 2.0, 1.0]), Some(0.0));
    assert_eq!(ndcg_at(10, &[0.0, 0.0], &[1.0f32, 2.0]), None);
    // The mean skips groups without a positive label.
    let labels = [0.0, 1.0, 0.0, 0.0];
    let m = mean_ndcg_at(10, &labels, &[1.0f32, 0.0, 5.0, 6.0], &[0, 2, 4]).unwrap();
    assert!((m - 1.0 / 3f64.log2()).abs() < 1e-12);
    assert_eq!(
        mean_ndcg_at(10, &[0.0f32; 2], &[1.0f32, 2.0], &[0, 2]),
        None
    );
}

/// Binary data on one feature: above 0.5 positive, and a fifth of the rows
/// missing with label `missing_label`.
fn step_with_missing(missing_label: f32) -> Dataset {
    let mut rng = Rng::new(5);
    let mut xs = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..2000 {
        if rng.next_f64() < 0.2 {
            xs.push(f32::NAN);
            labels.push(missing_label);
        } else {
            let x = rng.next_f64() as f32;
            xs.push(x);
            labels.push((x > 0.5) as i32 as f32);
        }
    }
    Dataset::single_group(names(1), xs, labels).unwrap()
}

#[test]
fn missing_values_follow_the_learned_default_direction() {
    let config = GbdtConfig {
        objective: Objective::Binary,
        num_trees: 1,
        num_leaves: 2,
        learning_rate: 1.0,
        ..GbdtConfig::default()
    };
    // Missing rows are positive: they must join the high side (right).
    let model = Booster::fit(&step_with_missing(1.0), None, &config, quiet).unwrap();
    let root = model.trees[0].nodes[0];
    assert!(
        (root.threshold - 0.5).abs() < 0.01,
        "threshold {}",
        root.threshold
    );
    assert!(!root.default_left());
    assert_eq!(model.predict_row(&[f32::NAN]), model.predict_row(&[0.9]));
    assert!(model.predict_row(&[f32::NAN]) > model.predict_row(&[0.1]));
    // Missing rows are negative: they must join the low side (left).
    let model = Booster::fit(&step_with_missing(0.0), None, &config, quiet).unwrap();
    let root = model.trees[0].nodes[0];
    assert!(root.default_left());
    assert_eq!(model.predict_row(&[f32::NAN]), model.predict_row(&[0.1]));
    assert!(model.predict_row(&[f32::NAN]) < model.predict_row(&[0.9]));
}

#[test]
fn a_feature_that_is_only_present_or_missing_can_split_on_missingness() {
    // One value or NaN: the only possible split is "missing or not", whose
    // threshold is +∞ (all values left) with missing to the right.
    let xs: Vec<f32> = (0..400)
        .map(|i| if i % 4 == 0 { f32::NAN } else { 1.0 })
        .collect();
    let labels: Vec<f32> = xs.iter().map(|x| x.is_nan() as i32 as f32).collect();
    let data = Dataset::single_group(names(1), xs, labels).unwrap();
    let config = GbdtConfig {
        objective: Objective::Binary,
        num_trees: 1,
        num_leaves: 2,
        learning_rate: 1.0,
        ..GbdtConfig::default()
    };
    let model = Booster::fit(&data, None, &config, quiet).unwrap();
    let root = model.trees[0].nodes[0];
    assert_eq!(root.threshold, f32::INFINITY);
    assert!(!root.default_left());
    assert!(model.predict_row(&[f32::NAN]) > model.predict_row(&[1.0]));
    // The infinite threshold survives the JSON file.
    let back = Booster::from_json(&model.to_json()).unwrap();
    assert_eq!(back, model);
}

#[test]
fn constant_features_are_never_split() {
    let mut rng = Rng::new(6);
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..500 {
        let x = rng.next_f64() as f32;
        features.extend_from_slice(&[7.0, x, f32::NAN]);
        labels.push((x > 0.4) as i32 as f32);
    }
    let data = Dataset::single_group(names(3), features, labels).unwrap();
    let binned = BinnedData::build(&data, 255, 1000, 0);
    assert_eq!(binned.usable, vec![1]);
    let config = GbdtConfig {
        objective: Objective::Binary,
        num_trees: 5,
        ..GbdtConfig::default()
    };
    let model = Booster::fit(&data, None, &config, quiet).unwrap();
    assert!(model
        .trees
        .iter()
        .flat_map(|t| &t.nodes)
        .all(|n| n.feature() == 1));
}

#[test]
fn bins_have_at_most_max_bins_and_agree_with_raw_thresholds() {
    let mut rng = Rng::new(7);
    // A skewed feature: half zeros, the rest spread out, some NaN.
    let values: Vec<f32> = (0..20_000)
        .map(|_| {
            let u = rng.next_f64();
            if u < 0.5 {
                0.0
            } else if u < 0.55 {
                f32::NAN
            } else {
                (rng.next_f64() * 1000.0).floor() as f32 / 7.0
            }
        })
        .collect();
    for max_bins in [2, 16, 255] {
        let sample: Vec<f32> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        let mapper = BinMapper::from_sample(&sample, max_bins);
        assert!(mapper.upper.len() <= max_bins);
        assert!(mapper.upper.windows(2).all(|w| w[0] < w[1]));
        // The heavy zero keeps a bin of its own whenever there are 3 bins or more.
        if max_bins > 2 {
            let zero_bin = mapper.bin(0.0) as usize;
            let next = values
                .iter()
                .filter(|v| **v > 0.0)
                .fold(f32::MAX, |a, &b| a.min(b));
            assert_ne!(mapper.bin(next) as usize, zero_bin);
        }
        for &v in values.iter().take(2000) {
            let b = mapper.bin(v);
            if v.is_nan() {
                assert_eq!(b as usize, mapper.missing_bin());
                continue;
            }
            for (t, &u) in mapper.upper.iter().enumerate() {
                assert_eq!(b as usize <= t, v <= u, "v {v} bin {b} t {t} upper {u}");
            }
        }
    }
}

#[test]
fn the_subtraction_trick_equals_a_directly_built_histogram() {
    let data = planted_ranking(50, 40, 0.3, 8);
    // Sprinkle missing values so the missing cells are exercised too.
    let mut features = data.features().to_vec();
    for (i, v) in features.iter_mut().enumerate() {
        if i % 11 == 0 {
            *v = f32::NAN;
        }
    }
    let data = Dataset::new(
        data.feature_names().to_vec(),
        features,
        data.labels().to_vec(),
        data.group_offsets().to_vec(),
    )
    .unwrap();
    let binned = BinnedData::build(&data, 32, 10_000, 0);
    let mut rng = Rng::new(9);
    let grads: Vec<GradPair> = (0..data.n_rows())
        .map(|_| GradPair {
            g: rng.next_f64() as f32 - 0.5,
            h: rng.next_f64() as f32,
        })
        .collect();
    let features = binned.usable.clone();
    let cells = binned.total_cells();
    let mut parent = vec![HistBin::default(); cells];
    hist::build(&mut parent, &binned, &features, Rows::All(&grads), None);

    // Split on feature 3 at bin 10, missing left.
    let mut rows: Vec<u32> = (0..data.n_rows() as u32).collect();
    let mut scratch = vec![0; rows.len()];
    let split_table: [bool; 256] =
        std::array::from_fn(|b| b <= 10 || b == binned.mappers[3].missing_bin());
    let (codes, slot) = binned.codes_of(3);
    let n_left = partition(&mut rows, &mut scratch, codes, slot, &split_table);
    let (left, right) = rows.split_at(n_left);
    assert!(!left.is_empty() && !right.is_empty());
    let direct = |rows: &[u32]| {
        let ordered: Vec<GradPair> = rows.iter().map(|&r| grads[r as usize]).collect();
        let mut h = vec![HistBin::default(); cells];
        hist::build(
            &mut h,
            &binned,
            &features,
            Rows::Subset {
                indices: rows,
                ordered: &ordered,
            },
            None,
        );
        h
    };
    let (small, large) = if left.len() <= right.len() {
        (left, right)
    } else {
        (right, left)
    };
    let small_hist = direct(small);
    let large_direct = direct(large);
    let mut large_by_subtraction = parent.clone();
    hist::subtract(
        &mut large_by_subtraction,
        &small_hist,
        &binned,
        &features,
        None,
    );
    let mut total_rows = 0;
    for &f in &features {
        let n_cells = binned.mappers[f].n_cells();
        let by_subtraction = &hist::feature_cells(&large_by_subtraction, f)[..n_cells];
        let built = &hist::feature_cells(&large_direct, f)[..n_cells];
        for (a, b) in by_subtraction.iter().zip(built) {
            assert_eq!(a.count(), b.count());
            assert!(
                (a.g - b.g).abs() < 1e-9 && (a.h - b.h).abs() < 1e-9,
                "feature {f}: {a:?} vs {b:?}"
            );
        }
        total_rows += built.iter().map(|c| c.count()).sum::<u64>();
    }
    // Every row of the larger child is in every feature's histogram.
    assert_eq!(total_rows, (large.len() * features.len()) as u64);
}

#[test]
fn partition_is_stable_and_the_parallel_path_matches_the_sequential_one() {
    let n = 300_000;
    let mut rng = Rng::new(10);
    let column: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
    let table: [bool; 256] = std::array::from_fn(|b| b % 3 == 0);
    let mut rows: Vec<u32> = (0..n as u32).filter(|r| r % 5 != 0).collect();
    let expected_left: Vec<u32> = rows
        .iter()
        .copied()
        .filter(|&r| table[column[r as usize] as usize])
        .collect();
    let expected_right: Vec<u32> = rows
        .iter()
        .copied()
        .filter(|&r| !table[column[r as usize] as usize])
        .collect();
    // The column sits in slot 2 of a group; the other slots must not matter.
    let codes: Vec<[u8; 4]> = column.iter().map(|&b| [0, 255, b, 1]).collect();
    let mut scratch = vec![0; rows.len()];
    let n_left = partition(&mut rows, &mut scratch, &codes, 2, &table);
    assert_eq!(&rows[..n_left], &expected_left[..]);
    assert_eq!(&rows[n_left..], &expected_right[..]);
}

fn fit_json(data: &Dataset, config: &GbdtConfig, threads: usize) -> String {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| Booster::fit(data, None, config, quiet).unwrap().to_json())
}

#[test]
fn the_same_seed_gives_the_same_model_on_any_thread_count() {
    let data = planted_ranking(600, 60, 0.5, 11);
    let config = GbdtConfig {
        num_trees: 15,
        bagging_fraction: 0.7,
        feature_fraction: 0.7,
        seed: 5,
        ..GbdtConfig::default()
    };
    let one = fit_json(&data, &config, 1);
    let two = fit_json(&data, &config, 2);
    let two_again = fit_json(&data, &config, 2);
    assert!(one == two, "1 and 2 threads differ");
    assert!(two == two_again, "two runs differ");
    // The seed does matter (so the equality above is not vacuous).
    let other = fit_json(&data, &GbdtConfig { seed: 6, ..config }, 2);
    assert!(other != two);
}

#[test]
fn a_json_round_trip_predicts_identically() {
    let train = planted_ranking(100, 30, 0.3, 12);
    let mut features = train.features().to_vec();
    for v in features.iter_mut().step_by(7) {
        *v = f32::NAN;
    }
    let train = Dataset::new(
        train.feature_names().to_vec(),
        features,
        train.labels().to_vec(),
        train.group_offsets().to_vec(),
    )
    .unwrap();
    let config = GbdtConfig {
        num_trees: 20,
        ..GbdtConfig::default()
    };
    let model = Booster::fit(&train, None, &config, quiet).unwrap();
    let json = model.to_json();
    let back = Booster::from_json(&json).unwrap();
    assert_eq!(back, model);
    assert_eq!(back.to_json(), json);
    let before = scores_of(&model, &train);
    let after = scores_of(&back, &train);
    assert!(before
        .iter()
        .zip(&after)
        .all(|(a, b)| a.to_bits() == b.to_bits()));
    // The batch path (chunks of rows walked in lockstep blocks) equals the
    // single-row path bit for bit, also for a ragged last chunk and block.
    let nf = train.n_features();
    let ragged = model.predict(&train.features()[..1001 * nf], nf);
    assert_eq!(ragged.len(), 1001);
    for (r, p) in ragged.iter().enumerate() {
        assert_eq!(
            p.to_bits(),
            model.predict_row(train.row(r)).to_bits(),
            "row {r}"
        );
        assert_eq!(p.to_bits(), before[r].to_bits());
    }
    // Plain serde goes through the same checks.
    let via_serde: Booster = serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
    assert_eq!(via_serde, model);
    // The file is readable: feature names and child kinds are spelled out.
    assert!(json.contains("\"feature_name\": \"x"));
    assert!(json.contains("\"leaf\":"));
}

#[test]
fn a_corrupted_model_is_rejected() {
    let train = planted_ranking(50, 30, 0.3, 13);
    let config = GbdtConfig {
        num_trees: 3,
        ..GbdtConfig::default()
    };
    let model = Booster::fit(&train, None, &config, quiet).unwrap();
    let good: serde_json::Value = serde_json::from_str(&model.to_json()).unwrap();
    let corrupt = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = good.clone();
        edit(&mut v);
        let text = v.to_string();
        // Any serde route fails too.
        assert!(serde_json::from_str::<Booster>(&text).is_err());
        Booster::from_json(&text).unwrap_err()
    };
    let err = corrupt(&|v| v["trees"][0]["nodes"][0]["left"] = serde_json::json!({"node": 999}));
    assert!(
        matches!(
            err,
            ModelError::ChildOutOfRange {
                tree: 0,
                node: 0,
                kind: "node",
                index: 999,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("999"));
    let err = corrupt(&|v| v["trees"][1]["nodes"][2]["right"] = serde_json::json!({"leaf": 77}));
    assert!(
        matches!(
            err,
            ModelError::ChildOutOfRange {
                tree: 1,
                node: 2,
                kind: "leaf",
                ..
            }
        ),
        "{err}"
    );
    let err = corrupt(&|v| v["trees"][0]["nodes"][1]["feature"] = serde_json::json!(42));
    assert!(
        matches!(
            err,
            ModelError::Feature {
                feature: 42,
                n_features: 6,
                ..
            }
        ),
        "{err}"
    );
    let err = corrupt(&|v| v["trees"][0]["nodes"][1]["feature_name"] = serde_json::json!("x9"));
    assert!(matches!(err, ModelError::Feature { .. }), "{err}");
    // A cycle back to the root.
    let err = corrupt(&|v| {
        let root_left = v["trees"][0]["nodes"][0]["left"].clone();
        assert!(root_left.get("node").is_some());
        let child = root_left["node"].as_u64().unwrap() as usize;
        v["trees"][0]["nodes"][child]["left"] = serde_json::json!({"node": 0});
    });
    assert!(matches!(err, ModelError::NotATree { tree: 0, .. }), "{err}");
    let err = corrupt(&|v| {
        v["trees"][2]["leaves"]
            .as_array_mut()
            .unwrap()
            .pop()
            .map(|_| ())
            .unwrap()
    });
    assert!(matches!(err, ModelError::NotATree { tree: 2, .. }), "{err}");
    let err = corrupt(&|v| v["version"] = serde_json::json!(7));
    assert!(matches!(err, ModelError::Version { found: 7 }), "{err}");
    let err = corrupt(&|v| v["trees"][0]["leaves"][0]["value"] = serde_json::json!(null));
    assert!(matches!(err, ModelError::Json(_)), "{err}");
    assert!(matches!(Booster::from_json("{"), Err(ModelError::Json(_))));
}

#[test]
fn early_stopping_keeps_the_best_iteration() {
    // A small, noisy training set overfits quickly: validation NDCG peaks
    // early and then falls away.
    let train = planted_ranking(30, 20, 3.0, 14);
    let valid = planted_ranking(200, 20, 3.0, 15);
    let config = GbdtConfig {
        num_trees: 300,
        learning_rate: 0.5,
        num_leaves: 31,
        min_data_in_leaf: 2,
        early_stopping_rounds: Some(10),
        ..GbdtConfig::default()
    };
    let mut seen = Vec::new();
    let model = Booster::fit(&train, Some(&valid), &config, |info| seen.push(info)).unwrap();
    let best = model.best_iteration().unwrap();
    assert!(seen.len() < 300, "early stopping never triggered");
    // Stopped exactly `early_stopping_rounds` after the best round.
    assert_eq!(seen.len(), best + 10 + 1);
    assert_eq!(model.n_trees(), best + 1);
    let metrics: Vec<f64> = seen.iter().map(|i| i.valid_metric.unwrap()).collect();
    let max = metrics.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(metrics[best], max);
    assert_eq!(
        metrics.iter().position(|&m| m == max),
        Some(best),
        "the first best round is kept"
    );
    assert_eq!(model.best_valid_metric(), Some(max as f32 as f64));
    // The kept model scores exactly that on the validation set.
    let ndcg = ndcg10(&valid, &scores_of(&model, &valid));
    assert!((ndcg - max).abs() < 1e-9, "model {ndcg} vs best {max}");
    assert!(seen
        .iter()
        .enumerate()
        .all(|(i, info)| info.round == i && info.train_metric.is_none()));
}

#[test]
fn binary_early_stopping_minimises_log_loss() {
    let mut rng = Rng::new(16);
    let make = |rng: &mut Rng, n: usize| {
        let mut f = Vec::new();
        let mut l = Vec::new();
        for _ in 0..n {
            let x = rng.next_f64() as f32;
            let y = rng.next_f64() as f32;
            f.extend_from_slice(&[x, y]);
            // Mostly noise, a little signal in x.
            l.push((rng.next_f64() < 0.3 + 0.4 * x as f64) as i32 as f32);
        }
        Dataset::single_group(names(2), f, l).unwrap()
    };
    let train = make(&mut rng, 300);
    let valid = make(&mut rng, 3000);
    let config = GbdtConfig {
        objective: Objective::Binary,
        num_trees: 200,
        learning_rate: 0.3,
        min_data_in_leaf: 2,
        early_stopping_rounds: Some(5),
        ..GbdtConfig::default()
    };
    let mut seen = Vec::new();
    let model = Booster::fit(&train, Some(&valid), &config, |i| {
        seen.push(i.valid_metric.unwrap())
    })
    .unwrap();
    let best = model.best_iteration().unwrap();
    let min = seen.iter().copied().fold(f64::MAX, f64::min);
    assert_eq!(seen[best], min);
    assert_eq!(model.n_trees(), best + 1);
    assert!(seen.len() < 200);
}

#[test]
fn the_training_metric_agrees_with_predictions() {
    // Training scores are updated by leaf ranges (and by tree walks when
    // bagging); both must equal what `predict` computes from the trees.
    let data = planted_ranking(100, 30, 0.5, 17);
    for bagging_fraction in [1.0, 0.6] {
        let config = GbdtConfig {
            num_trees: 12,
            eval_train: true,
            bagging_fraction,
            ..GbdtConfig::default()
        };
        let mut last = None;
        let model = Booster::fit(&data, None, &config, |i| last = i.train_metric).unwrap();
        let from_predict = ndcg10(&data, &scores_of(&model, &data));
        assert!(
            (last.unwrap() - from_predict).abs() < 1e-9,
            "{last:?} vs {from_predict}"
        );
    }
}

#[test]
fn feature_importance_ranks_the_planted_feature_first() {
    let mut rng = Rng::new(18);
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..3000 {
        let x: [f32; 4] = std::array::from_fn(|_| rng.next_f64() as f32);
        features.extend_from_slice(&x);
        labels.push((x[2] + 0.1 * rng.next_f64() as f32 > 0.6) as i32 as f32);
    }
    let data = Dataset::single_group(names(4), features, labels).unwrap();
    let config = GbdtConfig {
        objective: Objective::Binary,
        num_trees: 10,
        ..GbdtConfig::default()
    };
    let model = Booster::fit(&data, None, &config, quiet).unwrap();
    let imp = model.feature_importance();
    assert_eq!(imp.len(), 4);
    assert_eq!(imp[0].0, "x2");
    assert!(imp.windows(2).all(|w| w[0].1 >= w[1].1));
    assert!(imp[0].1 > 10.0 * imp[1].1, "{imp:?}");
}

#[test]
fn dataset_rejects_inconsistent_tables() {
    let n = |k: usize| names(k);
    assert_eq!(
        Dataset::new(n(2), vec![0.0; 5], vec![0.0; 3], vec![0, 3]).unwrap_err(),
        DatasetError::FeatureLength {
            got: 5,
            n_rows: 3,
            n_features: 2,
            expected: 6
        }
    );
    let err = Dataset::new(n(1), vec![0.0; 3], vec![0.0, f32::NAN, 1.0], vec![0, 3]).unwrap_err();
    assert!(matches!(err, DatasetError::NonFiniteLabel { row: 1, .. }));
    assert!(
        err.to_string().contains("row 1") && err.to_string().contains("NaN"),
        "{err}"
    );
    assert_eq!(
        Dataset::new(n(1), vec![0.0; 3], vec![0.0; 3], vec![0, 2]).unwrap_err(),
        DatasetError::OffsetsEnd { last: 2, n_rows: 3 }
    );
    assert_eq!(
        Dataset::new(n(1), vec![0.0; 3], vec![0.0; 3], vec![1, 3]).unwrap_err(),
        DatasetError::OffsetsStart { first: 1 }
    );
    assert_eq!(
        Dataset::new(n(1), vec![0.0; 3], vec![0.0; 3], vec![0, 2, 1, 3]).unwrap_err(),
        DatasetError::OffsetsDecrease {
            group: 1,
            from: 2,
            to: 1
        }
    );
    assert_eq!(
        Dataset::new(n(1), vec![0.0; 3], vec![0.0; 3], vec![]).unwrap_err(),
        DatasetError::NoOffsets
    );
    assert_eq!(
        Dataset::new(vec![], vec![], vec![], vec![0]).unwrap_err(),
        DatasetError::NoFeatures
    );
    assert_eq!(
        Dataset::new(
            vec!["a".into(), "a".into()],
            vec![0.0; 2],
            vec![0.0],
            vec![0, 1]
        )
        .unwrap_err(),
        DatasetError::DuplicateFeature { name: "a".into() }
    );
    // Missing feature values are fine.
    assert!(Dataset::new(n(1), vec![f32::NAN; 3], vec![0.0; 3], vec![0, 1, 3]).is_ok());
}

#[test]
fn fit_rejects_bad_settings_and_labels() {
    let data = planted_ranking(10, 10, 0.3, 19);
    let bad = |c: GbdtConfig| Booster::fit(&data, None, &c, quiet).unwrap_err();
    let err = bad(GbdtConfig {
        num_leaves: 1,
        ..GbdtConfig::default()
    });
    assert!(
        matches!(
            err,
            FitError::BadConfig {
                name: "num_leaves",
                ..
            }
        ),
        "{err}"
    );
    let err = bad(GbdtConfig {
        max_bins: 256,
        ..GbdtConfig::default()
    });
    assert!(
        matches!(
            err,
            FitError::BadConfig {
                name: "max_bins",
                ..
            }
        ),
        "{err}"
    );
    let err = bad(GbdtConfig {
        bagging_fraction: 0.0,
        ..GbdtConfig::default()
    });
    assert!(
        matches!(
            err,
            FitError::BadConfig {
                name: "bagging_fraction",
                ..
            }
        ),
        "{err}"
    );
    let err = bad(GbdtConfig {
        early_stopping_rounds: Some(5),
        ..GbdtConfig::default()
    });
    assert_eq!(err, FitError::EarlyStoppingWithoutValid);
    // Graded labels are fine for ranking but not for log-loss.
    let err = bad(GbdtConfig {
        objective: Objective::Binary,
        ..GbdtConfig::default()
    });
    assert!(
        matches!(
            err,
            FitError::BadLabel {
                objective: "binary",
                value: 2.0,
                ..
            }
        ),
        "{err}"
    );
    // A validation set with other columns.
    let other = Dataset::new(names(5), vec![0.0; 5], vec![1.0], vec![0, 1]).unwrap();
    let err = Booster::fit(&data, Some(&other), &GbdtConfig::default(), quiet).unwrap_err();
    assert!(
        matches!(err, FitError::ValidFeatures { index: 5, .. }),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "validation feature 5 is (none) but training feature 5 is `x5`"
    );
    // A validation set where NDCG is undefined everywhere.
    let unrankable = Dataset::new(names(6), vec![0.0; 6], vec![0.0], vec![0, 1]).unwrap();
    let err = Booster::fit(&data, Some(&unrankable), &GbdtConfig::default(), quiet).unwrap_err();
    assert_eq!(err, FitError::NoRankableValidGroup);
}

#[test]
fn split_groups_keeps_groups_whole_and_is_seeded() {
    let data = planted_ranking(50, 7, 0.3, 20);
    let (train, valid) = data.split_groups(0.2, 3);
    assert_eq!(valid.n_groups(), 10);
    assert_eq!(train.n_groups(), 40);
    assert_eq!(train.n_rows() + valid.n_rows(), data.n_rows());
    // Every group of each side is a group of the original, row for row.
    let originals: Vec<&[f32]> = (0..data.n_groups())
        .map(|g| {
            let r = data.group_rows(g);
            &data.features()[r.start * 6..r.end * 6]
        })
        .collect();
    for side in [&train, &valid] {
        for g in 0..side.n_groups() {
            let r = side.group_rows(g);
            assert!(originals.contains(&&side.features()[r.start * 6..r.end * 6]));
        }
    }
    assert_eq!(data.split_groups(0.2, 3), (train.clone(), valid.clone()));
    assert_ne!(data.split_groups(0.2, 4).1, valid);
    // Even a tiny fraction leaves one group on each side.
    let (t, v) = data.split_groups(0.0001, 1);
    assert_eq!((t.n_groups(), v.n_groups()), (49, 1));
}

#[test]
fn child_encoding_round_trips() {
    for c in [
        Child::Leaf(0),
        Child::Leaf(5),
        Child::Node(0),
        Child::Node(9),
    ] {
        assert_eq!(Child::decode(c.encode()), c);
    }
}
