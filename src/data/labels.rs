//! Relevance labels: which items each shopper of a time window found relevant.
//!
//! Used by evaluation (the test window) and by two_stage's training (its label
//! windows), so it lives with the data rather than above either of them.

use std::collections::{BTreeMap, HashSet};

use super::{EventKind, EventLog, IdMap, Protocol};

/// One test user and what they found relevant.
#[derive(Debug, Clone, PartialEq)]
pub struct TestUser {
    /// Raw `visitorid`.
    pub visitor: i64,
    /// Dense training index, `None` for a cold user.
    pub user: Option<u32>,
    /// Relevant items known to training (dense, sorted ascending).
    pub relevant: Vec<u32>,
    /// All relevant items, including those no model could know.
    pub n_relevant: usize,
}

/// The users to evaluate and their relevant items, in visitor order; `users`
/// and `items` are the id maps of the models being evaluated.
pub fn ground_truth(
    test: &EventLog,
    users: &IdMap,
    items: &IdMap,
    protocol: Protocol,
) -> Vec<TestUser> {
    let mut by_visitor: BTreeMap<i64, HashSet<i64>> = BTreeMap::new();
    for i in 0..test.len() {
        let counts = match protocol {
            Protocol::Strict => test.kind[i] == EventKind::AddToCart,
            Protocol::Reference => {
                test.kind[i] != EventKind::Transaction && items.get(test.item[i]).is_some()
            }
        };
        if counts {
            by_visitor
                .entry(test.visitor[i])
                .or_default()
                .insert(test.item[i]);
        }
    }
    by_visitor
        .into_iter()
        .filter_map(|(visitor, found)| {
            let user = users.get(visitor);
            if protocol == Protocol::Reference && user.is_none() {
                return None;
            }
            let mut relevant: Vec<u32> = found.iter().filter_map(|&i| items.get(i)).collect();
            relevant.sort_unstable();
            Some(TestUser {
                visitor,
                user,
                relevant,
                n_relevant: found.len(),
            })
        })
        .collect()
}
