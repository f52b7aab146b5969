//! The user × item interaction matrix that matrix-factorisation models learn from.
//!
//! Each cell is the sum of the weights of the user's events on the item, with one
//! weight per event kind (a cart says more than a view). Rows are users and
//! columns items of a [`TrainSet`]; the matrix is CSR with sorted column indices.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sprs::CsMat;

use super::events::EventKind;
use super::trainset::TrainSet;

/// How much one event of each kind adds to its user × item cell.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventWeights {
    /// Weight of a view.
    pub view: f32,
    /// Weight of an add-to-cart.
    pub addtocart: f32,
    /// Weight of a transaction.
    pub transaction: f32,
}

impl Default for EventWeights {
    fn default() -> Self {
        EventWeights {
            view: 1.0,
            addtocart: 5.0,
            transaction: 10.0,
        }
    }
}

impl EventWeights {
    /// The weight of one event of `kind`.
    pub fn of(&self, kind: EventKind) -> f32 {
        match kind {
            EventKind::View => self.view,
            EventKind::AddToCart => self.addtocart,
            EventKind::Transaction => self.transaction,
        }
    }
}

/// The users × items matrix of summed event weights; cells whose sum is not
/// positive are left out (a zero weight means "ignore this kind").
pub fn interaction_matrix(train: &TrainSet, weights: &EventWeights) -> CsMat<f32> {
    let n_users = train.users.len();
    let rows: Vec<Vec<(u32, f32)>> = (0..n_users as u32)
        .into_par_iter()
        .map(|u| {
            sum_by_item(
                train
                    .user_events(u)
                    .map(|e| (train.item[e], weights.of(train.kind[e])))
                    .collect(),
            )
        })
        .collect();
    let mut indptr = Vec::with_capacity(n_users + 1);
    indptr.push(0usize);
    let nnz: usize = rows.iter().map(Vec::len).sum();
    let mut indices = Vec::with_capacity(nnz);
    let mut data = Vec::with_capacity(nnz);
    for row in rows {
        for (item, w) in row {
            indices.push(item as usize);
            data.push(w);
        }
        indptr.push(indices.len());
    }
    CsMat::new((n_users, train.items.len()), indptr, indices, data)
}

/// Sum the values of equal items, sorted by item; non-positive sums are dropped.
pub fn sum_by_item(mut cells: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
    cells.sort_unstable_by_key(|c| c.0);
    let mut merged: Vec<(u32, f32)> = Vec::with_capacity(cells.len());
    for (item, w) in cells {
        match merged.last_mut() {
            Some(last) if last.0 == item => last.1 += w,
            _ => merged.push((item, w)),
        }
    }
    merged.retain(|c| c.1 > 0.0);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::events::EventLog;

    #[test]
    fn sums_weights_per_cell_by_kind() {
        let mut log = EventLog::default();
        log.push(1, 10, EventKind::View, 100);
        log.push(2, 10, EventKind::View, 100);
        log.push(3, 10, EventKind::AddToCart, 100);
        log.push(4, 10, EventKind::View, 200);
        log.push(5, 11, EventKind::Transaction, 200);
        log.sort_dedup();
        let train = TrainSet::new(&log, 10);
        let m = interaction_matrix(&train, &EventWeights::default());
        let (u10, u11) = (
            train.users.get(10).unwrap() as usize,
            train.users.get(11).unwrap() as usize,
        );
        let (i100, i200) = (
            train.items.get(100).unwrap() as usize,
            train.items.get(200).unwrap() as usize,
        );
        assert_eq!(m.get(u10, i100), Some(&7.0));
        assert_eq!(m.get(u10, i200), Some(&1.0));
        assert_eq!(m.get(u11, i200), Some(&10.0));
        assert_eq!(m.get(u11, i100), None);
        assert_eq!(m.nnz(), 3);
    }
}
