//! ALS-specific checks: the CG solve against an exact reference, the loss, the
//! planted structure and similar items.

use super::*;
use crate::data::interaction_matrix;
use crate::models::tests::checkerboard;

/// Exact solve of the same row system in f64 by Gaussian elimination: slow,
/// obviously correct, the yardstick for the CG solver.
fn exact_row(fixed: &Factors, items: &[usize], weights: &[f32], cfg: &AlsConfig) -> Vec<f64> {
    let f = fixed.dim;
    let mut a = vec![0.0f64; f * f];
    let mut b = vec![0.0f64; f];
    for r in 0..fixed.rows {
        let y = fixed.row(r);
        for i in 0..f {
            for j in 0..f {
                a[i * f + j] += f64::from(y[i]) * f64::from(y[j]);
            }
        }
    }
    for d in 0..f {
        a[d * f + d] += f64::from(cfg.regularization);
    }
    for (&it, &w) in items.iter().zip(weights) {
        let y = fixed.row(it);
        let c = 1.0 + f64::from(cfg.alpha) * f64::from(w);
        for i in 0..f {
            b[i] += c * f64::from(y[i]);
            for j in 0..f {
                a[i * f + j] += (c - 1.0) * f64::from(y[i]) * f64::from(y[j]);
            }
        }
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..f {
        let pivot = (col..f)
            .max_by(|&p, &q| a[p * f + col].abs().total_cmp(&a[q * f + col].abs()))
            .unwrap();
        for k in 0..f {
            a.swap(col * f + k, pivot * f + k);
        }
        b.swap(col, pivot);
        for row in col + 1..f {
            let m = a[row * f + col] / a[col * f + col];
            for k in col..f {
                a[row * f + k] -= m * a[col * f + k];
            }
            b[row] -= m * b[col];
        }
    }
    let mut x = vec![0.0f64; f];
    for row in (0..f).rev() {
        let s: f64 = (row + 1..f).map(|k| a[row * f + k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row * f + row];
    }
    x
}

/// Random factors scaled up so the row systems are well conditioned.
fn well_scaled_factors(rows: usize, dim: usize, seed: u64) -> Factors {
    let f = random_factors(rows, dim, seed, 1);
    Factors {
        data: f.data.iter().map(|v| v * 100.0).collect(),
        ..f
    }
}

fn gathered(fixed: &Factors, items: &[usize]) -> Vec<f32> {
    let mut out = Vec::new();
    gather_rows(fixed, items, &mut out);
    out
}

#[test]
fn conjugate_gradient_converges_to_the_exact_solution() {
    let cfg = AlsConfig {
        factors: 6,
        cg_steps: 6, // CG is exact in `factors` steps on a well-conditioned system
        regularization: 0.5,
        alpha: 3.0,
        ..AlsConfig::default()
    };
    let fixed = well_scaled_factors(30, 6, 9);
    let items = [1usize, 4, 7, 20];
    let weights = [1.0f32, 2.0, 5.0, 1.0];
    let mut single = AlsConfig { ..cfg.clone() };
    single.cg_steps = 6;
    let mut x = vec![0.0f32; 6];
    let a_base = regularized_gram(&fixed, cfg.regularization);
    let mut scratch = vec![0.0; 18];
    solve_row::<false>(
        &mut x,
        &a_base,
        &gathered(&fixed, &items),
        &weights,
        &single,
        &mut scratch,
    );
    let exact = exact_row(&fixed, &items, &weights, &cfg);
    for (got, want) in x.iter().zip(&exact) {
        assert!(
            (f64::from(*got) - want).abs() < 1e-3 * (1.0 + want.abs()),
            "{got} vs {want}"
        );
    }
}

#[test]
fn the_exact_small_row_solve_matches_the_reference() {
    let cfg = AlsConfig {
        factors: 6,
        regularization: 0.5,
        alpha: 3.0,
        ..AlsConfig::default()
    };
    let fixed = well_scaled_factors(30, 6, 4);
    let b = regularized_gram(&fixed, cfg.regularization);
    let b_inv = Factors {
        rows: 6,
        dim: 6,
        data: invert_spd(&b, 6).unwrap(),
    };
    let all: Vec<usize> = (0..30).collect();
    let z = Factors {
        rows: 30,
        dim: 6,
        data: fixed.scores_against(&all, &b_inv),
    };
    for (items, weights) in [
        (vec![3usize], vec![2.0f32]),
        (vec![1, 4, 7, 20], vec![1.0, 2.0, 5.0, 1.0]),
        (vec![0, 2, 5, 8, 11, 13, 17, 29], vec![1.0; 8]),
    ] {
        let mut x = vec![0.0f32; 6];
        solve_small_row(&mut x, &fixed, &z, (&items, &weights), cfg.alpha);
        let exact = exact_row(&fixed, &items, &weights, &cfg);
        for (got, want) in x.iter().zip(&exact) {
            assert!(
                (f64::from(*got) - want).abs() < 1e-3 * (1.0 + want.abs()),
                "{got} vs {want}"
            );
        }
    }
}

#[test]
fn loss_falls_over_iterations() {
    let train = checkerboard();
    let cfg = AlsConfig {
        factors: 4,
        regularization: 0.1,
        alpha: 2.0,
        ..AlsConfig::default()
    };
    let m = interaction_matrix(&train, &cfg.weights);
    let mut trainer = AlsTrainer::new(&m, &cfg).unwrap();
    let mut losses = vec![trainer.loss()];
    for _ in 0..5 {
        trainer.iterate().unwrap();
        losses.push(trainer.loss());
    }
    assert!(losses.windows(2).all(|w| w[1] <= w[0] + 1e-9), "{losses:?}");
    assert!(losses[5] < losses[0] * 0.5, "{losses:?}");
}

#[test]
fn recovers_the_planted_groups() {
    let train = checkerboard();
    let cfg = AlsConfig {
        factors: 4,
        iterations: 15,
        regularization: 0.1,
        alpha: 2.0,
        ..AlsConfig::default()
    };
    let m = interaction_matrix(&train, &cfg.weights);
    let als = Als::fit(&m, &cfg, |_, _| {}).unwrap();
    let mut hits = 0;
    for raw_user in 0..40i64 {
        let u = train.users.get(raw_user).unwrap();
        let held_out = train.items.get(raw_user % 10).unwrap();
        let seen: Vec<u32> = {
            let mut s: Vec<u32> = train.user_events(u).map(|e| train.item[e]).collect();
            s.sort_unstable();
            s
        };
        let ctx = crate::models::Context::known(&train, u);
        let top = als.recommend(&ctx, 1, &crate::models::Filter::excluding(seen));
        hits += usize::from(top.first().map(|t| t.0) == Some(held_out));
    }
    assert!(hits >= 38, "held-out item ranked first for {hits}/40 users");
}

#[test]
fn similar_items_stay_within_the_group() {
    let train = checkerboard();
    let cfg = AlsConfig {
        factors: 2,
        regularization: 0.1,
        alpha: 2.0,
        ..AlsConfig::default()
    };
    let m = interaction_matrix(&train, &cfg.weights);
    let als = Als::fit(&m, &cfg, |_, _| {}).unwrap();
    for raw in 0..10i64 {
        let item = train.items.get(raw).unwrap();
        let similar = als.similar_items(item, 4);
        assert_eq!(similar.len(), 4);
        assert!(similar.iter().all(|s| s.0 != item));
        for (other, _) in similar {
            assert_eq!(
                train.items.raw(other) % 2,
                raw % 2,
                "item {raw} paired across groups: {:?}",
                als.similar_items(item, 9)
                    .iter()
                    .map(|s| (train.items.raw(s.0), s.1))
                    .collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn rejects_settings_that_cannot_work() {
    let m = interaction_matrix(&checkerboard(), &EventWeights::default());
    for cfg in [
        AlsConfig {
            factors: 0,
            ..AlsConfig::default()
        },
        AlsConfig {
            cg_steps: 0,
            ..AlsConfig::default()
        },
        AlsConfig {
            alpha: -1.0,
            ..AlsConfig::default()
        },
    ] {
        assert!(matches!(
            AlsTrainer::new(&m, &cfg),
            Err(AlsError::InvalidConfig(_))
        ));
    }
}

/// Every kernel this CPU has, on one row: `(kernel, x)` from the same warm start.
fn solve_with_every_kernel(
    fixed: &Factors,
    items: &[usize],
    weights: &[f32],
    cfg: &AlsConfig,
    start: &[f32],
) -> Vec<(Kernel, Vec<f32>)> {
    let f = fixed.dim;
    let a_base = regularized_gram(fixed, cfg.regularization);
    let system = RowSystem {
        a_base: &a_base,
        fixed,
        items,
        weights,
        config: cfg,
    };
    Kernel::available(f)
        .into_iter()
        .map(|kernel| {
            let mut x = start.to_vec();
            let mut scratch = vec![0.0; 3 * f];
            // A buffer left from a longer row, as in training.
            let mut ys = vec![f32::NAN; (items.len() + 5) * f];
            // Prefetch the row's own vectors: what is asked for must not matter.
            let mut ahead = Prefetch::new(fixed, items);
            kernel.solve_row(&mut x, &system, &mut ys, &mut scratch, &mut ahead);
            (kernel, x)
        })
        .collect()
}

#[test]
fn every_kernel_converges_to_the_exact_solution() {
    // 16 factors has a SIMD kernel; 7 and 10 interactions exercise both the
    // blocks of four and the leftovers.
    let cfg = AlsConfig {
        factors: 16,
        cg_steps: 16, // CG is exact in `factors` steps on a well-conditioned system
        regularization: 0.5,
        alpha: 3.0,
        ..AlsConfig::default()
    };
    let fixed = well_scaled_factors(40, 16, 5);
    for (items, weights) in [
        (
            vec![2usize, 5, 11, 17, 23, 29, 31],
            vec![1.0f32, 2.0, 5.0, 1.0, 3.0, 1.0, 4.0],
        ),
        ((0..40).step_by(4).collect(), vec![2.0; 10]),
    ] {
        let exact = exact_row(&fixed, &items, &weights, &cfg);
        for (kernel, x) in solve_with_every_kernel(&fixed, &items, &weights, &cfg, &[0.0; 16]) {
            for (got, want) in x.iter().zip(&exact) {
                assert!(
                    (f64::from(*got) - want).abs() < 1e-3 * (1.0 + want.abs()),
                    "{kernel:?}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn every_kernel_agrees_with_the_portable_path() {
    // The benchmark's shape: 64 factors, 3 warm-started steps.
    let cfg = AlsConfig::default();
    let fixed = random_factors(200, 64, 3, 1);
    let items: Vec<usize> = (0..200).step_by(7).collect();
    let weights: Vec<f32> = (0..items.len()).map(|i| 1.0 + (i % 5) as f32).collect();
    let start: Vec<f32> = (0..64).map(|d| 0.001 * (d % 7) as f32).collect();
    let solved = solve_with_every_kernel(&fixed, &items, &weights, &cfg, &start);
    let (_, plain) = &solved[0];
    for (kernel, x) in &solved[1..] {
        for (p, q) in plain.iter().zip(x) {
            assert!(
                (p - q).abs() <= 1e-3 * (1.0 + p.abs()),
                "{kernel:?}: {p} vs {q}"
            );
        }
    }
}

#[test]
fn a_row_without_interactions_solves_to_zero() {
    let cfg = AlsConfig {
        factors: 16,
        ..AlsConfig::default()
    };
    let fixed = random_factors(10, 16, 3, 1);
    for (kernel, x) in solve_with_every_kernel(&fixed, &[], &[], &cfg, &[0.5; 16]) {
        assert!(x.iter().all(|&v| v == 0.0), "{kernel:?}: {x:?}");
    }
}

/// The events of dense user `u` of `train`, as events received since training.
fn as_new_events(train: &crate::data::TrainSet, u: u32) -> Vec<crate::models::Event> {
    train
        .user_events(u)
        .map(|e| crate::models::Event {
            item: train.item[e],
            kind: train.kind[e],
            timestamp_ms: train.timestamp_ms[e],
        })
        .collect()
}

#[test]
fn fold_in_solves_the_users_system_exactly() {
    let train = checkerboard();
    let cfg = AlsConfig {
        factors: 8,
        iterations: 5,
        regularization: 0.1,
        alpha: 2.0,
        ..AlsConfig::default()
    };
    let m = interaction_matrix(&train, &cfg.weights);
    let als = Als::fit(&m, &cfg, |_, _| {}).unwrap();
    for u in 0..train.users.len() {
        let row = m.outer_view(u).unwrap();
        let cells: Vec<(u32, f32)> = row.iter().map(|(i, &w)| (i as u32, w)).collect();
        let got = als.fold_in(&cells);
        let want = exact_row(&als.item_factors, row.indices(), row.data(), &cfg);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-4 * (1.0 + w.abs()),
                "{g} vs {w}"
            );
        }
    }
}

#[test]
fn folding_in_a_training_users_own_history_gives_their_trained_top_10() {
    // The trained rows are 3 CG steps per iteration away from the exact solve
    // the fold-in does, and items within a taste group score nearly alike, so
    // the order may differ a little: at least 9 of 10 items in common on
    // average, and the folded-in first item among the trained first three for
    // at least 95% of users.
    let train = checkerboard();
    let cfg = AlsConfig {
        factors: 8,
        iterations: 15,
        regularization: 0.1,
        alpha: 2.0,
        ..AlsConfig::default()
    };
    let m = interaction_matrix(&train, &cfg.weights);
    let als = Als::fit(&m, &cfg, |_, _| {}).unwrap();
    let none = crate::models::Filter::none();
    let (mut common, mut same_first) = (0usize, 0usize);
    let users = train.users.len() as u32;
    for u in 0..users {
        let trained = als.recommend(&crate::models::Context::known(&train, u), 10, &none);
        let events = as_new_events(&train, u);
        let folded = als.recommend(
            &crate::models::Context::new(&train, None, &events),
            10,
            &none,
        );
        common += folded
            .iter()
            .filter(|f| trained.iter().any(|t| t.0 == f.0))
            .count();
        same_first += usize::from(trained[..3].iter().any(|t| t.0 == folded[0].0));
    }
    assert!(
        common as f64 >= 9.0 * f64::from(users),
        "{common} items in common"
    );
    assert!(
        same_first as f64 >= 0.95 * f64::from(users),
        "{same_first} first in top 3"
    );
}

#[test]
fn the_inner_product_index_finds_the_exact_top_items() {
    // Enough items for a clustered index: 8000 items of 16 factors around 40
    // taste centres, with lengths varying like trained factors' do.
    let (users, items, f) = (400, 8000, 16);
    let mut rng = crate::rng::Rng::new(3);
    let centres: Vec<Vec<f32>> = (0..40)
        .map(|_| (0..f).map(|_| rng.next_f32() - 0.5).collect())
        .collect();
    let mut table = |rows: usize| {
        let mut t = Factors::zeros(rows, f);
        for row in t.data.chunks_exact_mut(f) {
            let c = &centres[rng.below(40) as usize];
            let length = 0.2 + rng.next_f32();
            for (v, &m) in row.iter_mut().zip(c) {
                *v = length * (m + 0.3 * (rng.next_f32() - 0.5));
            }
        }
        t
    };
    let als = Als::from_factors(table(users), table(items), AlsConfig::default());
    let index = als.build_index();
    // Tuned at build on other users than these.
    let recall = index.mips_recall(&als, 50, 200, 1);
    let share = index.mips_probe_share();
    assert!(
        recall >= 0.93,
        "recall@50 {recall} probing {share:.3} of the clusters"
    );
    assert!(
        share < 1.0,
        "the index must not degrade to a full scan here"
    );
    // Scores are the true inner products, and a filter is obeyed.
    let x = als.user_factors.row(0).to_vec();
    let refuse = crate::models::Filter::excluding((0..4000).collect());
    let got = als.top_items(&x, 10, &refuse);
    assert_eq!(got.len(), 10);
    for (item, score) in got {
        assert!(item >= 4000);
        let exact = crate::models::factors::dot(&x, als.item_factors.row(item as usize));
        assert!((score - exact).abs() < 1e-4, "{score} vs {exact}");
    }
}

#[test]
fn the_fast_als_loss_agrees_with_the_reference() {
    // A small random users × items matrix with a few interactions per row.
    let (users, items) = (60, 40);
    let mut rng = crate::rng::Rng::new(7);
    let mut cells = sprs::TriMat::new((users, items));
    for u in 0..users {
        for _ in 0..1 + u % 5 {
            let i = (rng.next_u64() % items as u64) as usize;
            cells.add_triplet(u, i, 1.0 + (rng.next_u64() % 5) as f32);
        }
    }
    let matrix: sprs::CsMat<f32> = cells.to_csr();
    let config = AlsConfig {
        factors: 8,
        alpha: 2.0,
        regularization: 0.1,
        ..AlsConfig::default()
    };
    let mut trainer = AlsTrainer::new(&matrix, &config).unwrap();
    for _ in 0..3 {
        let (fast, reference) = (fast_loss(&trainer, &matrix, &config), trainer.loss());
        assert!(
            (fast - reference).abs() <= 1e-5 * reference.abs().max(1e-3),
            "fast {fast} vs reference {reference}"
        );
        trainer.iterate().unwrap();
    }
}

#[test]
fn the_neighbour_table_answers_similar_items_as_the_search_would() {
    let train = checkerboard();
    let cfg = AlsConfig {
        factors: 4,
        regularization: 0.1,
        alpha: 2.0,
        ..AlsConfig::default()
    };
    let m = interaction_matrix(&train, &cfg.weights);
    let als = Als::fit(&m, &cfg, |_, _| {}).unwrap();
    let items: Vec<u32> = (0..train.items.len() as u32).collect();
    // A small catalogue is searched exactly: the table equals the exact lists.
    let exact = als.exact_similar_batch(&items, 4);
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let table = als.compute_neighbours(6, None, |m| {
        calls.fetch_add(m, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(calls.into_inner(), items.len());
    als.set_neighbours(table.clone()).unwrap();
    let ids = |l: &[Vec<Scored>]| -> Vec<Vec<u32>> {
        l.iter().map(|r| r.iter().map(|s| s.0).collect()).collect()
    };
    assert_eq!(ids(&als.similar_items_batch(&items, 4)), ids(&exact));
    // Asking beyond the table's width falls back to the search.
    assert_eq!(als.similar_items_batch(&items, 9)[0].len(), 9);
    // A table that does not fit the model is refused.
    let mut wrong = table;
    wrong.items[0] = 10_000;
    let other = Als::fit(&m, &cfg, |_, _| {}).unwrap();
    assert!(other.set_neighbours(wrong).is_err());
}

#[test]
fn keeping_some_users_rows_keeps_their_vectors_and_folds_the_others_in() {
    let train = checkerboard();
    let cfg = AlsConfig {
        factors: 8,
        iterations: 5,
        regularization: 0.1,
        alpha: 2.0,
        ..AlsConfig::default()
    };
    let m = interaction_matrix(&train, &cfg.weights);
    let full = Als::fit(&m, &cfg, |_, _| {}).unwrap();
    let mut kept = full.clone();
    let users = train.users.len();
    let keep: Vec<bool> = (0..users).map(|u| u % 3 == 0).collect();
    kept.keep_users(&keep);
    assert_eq!(kept.user_factors.rows, keep.iter().filter(|&&k| k).count());
    for u in 0..users as u32 {
        let ctx = crate::models::Context::known(&train, u);
        let got = kept.user_vector(&ctx).unwrap();
        let want = if keep[u as usize] {
            full.user_vector(&ctx).unwrap()
        } else {
            let events = as_new_events(&train, u);
            full.user_vector(&crate::models::Context::new(&train, None, &events))
                .unwrap()
        };
        assert_eq!(got, want, "user {u}");
    }
}
