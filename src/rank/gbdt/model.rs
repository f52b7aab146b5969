//! The model file: a [`Booster`] as readable JSON, and the checks that make a
//! loaded model safe to run.
//!
//! The in-memory trees are packed for speed (see [`tree`](super::tree)); the
//! file spells them out instead — every node with its feature index *and*
//! name, threshold, default direction, gain and children written as
//! `{"node": i}` or `{"leaf": j}` — so a model can be read, diffed and
//! debugged by eye. Serde converts through [`ModelFile`] in both directions,
//! which means any way of deserialising a `Booster` (on its own or inside a
//! bigger bundle) runs the same validation: indices in range, names matching,
//! every node reached exactly once from the root, every number finite. After
//! that, prediction can never index out of bounds or loop.
//!
//! Every number that prediction or equality depends on (thresholds, leaf
//! values, base score, gains) is an `f32`, which serde_json writes in the
//! shortest form and reads back exactly; its `f64` parsing is only exact with
//! the `float_roundtrip` feature, which this module does not rely on.
//!
//! Thresholds may be ±∞ (a split that only separates missing
//! values); JSON has no infinity, so those are written as the strings `"inf"`
//! and `"-inf"`. Feature importance is written for readers but recomputed
//! from the trees on load.

use serde::{Deserialize, Serialize};

use super::booster::Booster;
use super::config::{GbdtConfig, Objective};
use super::error::ModelError;
use super::quickscorer::QuickScorer;
use super::tree::{Child, Node, Tree};

/// The `format` tag of a model file.
const FORMAT: &str = "recsys-gbdt";
/// The file layout version this build writes and reads.
const VERSION: u32 = 1;

/// A [`Booster`] as written to disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ModelFile {
    format: String,
    version: u32,
    objective: Objective,
    feature_names: Vec<String>,
    base_score: f32,
    best_iteration: Option<usize>,
    best_valid_metric: Option<f32>,
    #[serde(default)]
    feature_importance: Vec<ImportanceEntry>,
    #[serde(default)]
    config: GbdtConfig,
    trees: Vec<TreeFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportanceEntry {
    feature: String,
    gain: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeFile {
    nodes: Vec<NodeFile>,
    leaves: Vec<LeafFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeFile {
    feature: usize,
    feature_name: String,
    #[serde(with = "threshold_repr")]
    threshold: f32,
    default_left: bool,
    gain: f32,
    left: ChildRef,
    right: ChildRef,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum ChildRef {
    Node(usize),
    Leaf(usize),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeafFile {
    value: f32,
    count: u64,
}

/// `f32` thresholds as JSON numbers, or `"inf"` / `"-inf"`.
mod threshold_repr {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &f32, s: S) -> Result<S::Ok, S::Error> {
        if t.is_finite() {
            s.serialize_f32(*t)
        } else if *t > 0.0 {
            s.serialize_str("inf")
        } else if *t < 0.0 {
            s.serialize_str("-inf")
        } else {
            s.serialize_str("nan")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f32),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(x) => Ok(x),
            Repr::Text(t) => match t.as_str() {
                "inf" => Ok(f32::INFINITY),
                "-inf" => Ok(f32::NEG_INFINITY),
                other => Err(D::Error::custom(format!(
                    "threshold `{other}` is neither a number nor \"inf\" / \"-inf\""
                ))),
            },
        }
    }
}

impl From<Booster> for ModelFile {
    fn from(b: Booster) -> Self {
        let names = &b.feature_names;
        let child = |c: i32| match Child::decode(c) {
            Child::Node(i) => ChildRef::Node(i),
            Child::Leaf(i) => ChildRef::Leaf(i),
        };
        let trees = b
            .trees
            .iter()
            .map(|t| TreeFile {
                nodes: t
                    .nodes
                    .iter()
                    .zip(&t.gains)
                    .map(|(n, &gain)| NodeFile {
                        feature: n.feature(),
                        feature_name: names[n.feature()].clone(),
                        threshold: n.threshold,
                        default_left: n.default_left(),
                        gain,
                        left: child(n.children[0]),
                        right: child(n.children[1]),
                    })
                    .collect(),
                leaves: t
                    .leaf_values
                    .iter()
                    .zip(&t.leaf_counts)
                    .map(|(&value, &count)| LeafFile { value, count })
                    .collect(),
            })
            .collect();
        let feature_importance = b
            .feature_importance()
            .into_iter()
            .map(|(feature, gain)| ImportanceEntry { feature, gain })
            .collect();
        ModelFile {
            format: FORMAT.to_string(),
            version: VERSION,
            objective: b.objective,
            feature_names: b.feature_names,
            base_score: b.base_score,
            best_iteration: b.best_iteration,
            best_valid_metric: b.best_valid_metric,
            feature_importance,
            config: b.config,
            trees,
        }
    }
}

impl TryFrom<ModelFile> for Booster {
    type Error = ModelError;

    fn try_from(f: ModelFile) -> Result<Self, ModelError> {
        if f.format != FORMAT {
            return Err(ModelError::Format { found: f.format });
        }
        if f.version != VERSION {
            return Err(ModelError::Version { found: f.version });
        }
        if f.feature_names.is_empty() {
            return Err(ModelError::Features {
                detail: "no features".into(),
            });
        }
        let mut seen = std::collections::HashSet::new();
        for name in &f.feature_names {
            if !seen.insert(name.as_str()) {
                return Err(ModelError::Features {
                    detail: format!("`{name}` appears more than once"),
                });
            }
        }
        if let Objective::LambdaRank { ndcg_at: 0 } = f.objective {
            return Err(ModelError::Field {
                field: "objective.ndcg_at",
                detail: "0, expected at least 1".into(),
            });
        }
        finite("base_score", f.base_score as f64)?;
        if let Some(m) = f.best_valid_metric {
            finite("best_valid_metric", m as f64)?;
        }
        let trees = f
            .trees
            .into_iter()
            .enumerate()
            .map(|(t, tf)| tree_from_file(t, tf, &f.feature_names))
            .collect::<Result<Vec<Tree>, ModelError>>()?;
        Ok(Booster {
            objective: f.objective,
            scorer: QuickScorer::new(&trees, f.feature_names.len()),
            feature_names: f.feature_names,
            base_score: f.base_score,
            trees,
            best_iteration: f.best_iteration,
            best_valid_metric: f.best_valid_metric,
            config: f.config,
        })
    }
}

fn finite(what: impl Into<String>, value: f64) -> Result<(), ModelError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ModelError::NonFinite {
            what: what.into(),
            value,
        })
    }
}

/// Checks one tree of the file and packs it.
fn tree_from_file(t: usize, tf: TreeFile, names: &[String]) -> Result<Tree, ModelError> {
    let n_nodes = tf.nodes.len();
    let n_leaves = tf.leaves.len();
    if n_leaves != n_nodes + 1 {
        return Err(ModelError::NotATree {
            tree: t,
            detail: format!(
                "{n_nodes} nodes need {} leaves, found {n_leaves}",
                n_nodes + 1
            ),
        });
    }
    if n_nodes >= i32::MAX as usize {
        return Err(ModelError::NotATree {
            tree: t,
            detail: format!("{n_nodes} nodes is too many"),
        });
    }
    let mut nodes = Vec::with_capacity(n_nodes);
    let mut gains = Vec::with_capacity(n_nodes);
    for (i, n) in tf.nodes.iter().enumerate() {
        if n.feature >= names.len() || names[n.feature] != n.feature_name {
            return Err(ModelError::Feature {
                tree: t,
                node: i,
                feature: n.feature,
                name: n.feature_name.clone(),
                n_features: names.len(),
            });
        }
        if n.threshold.is_nan() {
            return Err(ModelError::NonFinite {
                what: format!("tree {t} node {i} threshold"),
                value: f64::NAN,
            });
        }
        finite(format!("tree {t} node {i} gain"), n.gain as f64)?;
        let encode = |c: ChildRef| match c {
            ChildRef::Node(j) if j < n_nodes => Ok(Child::Node(j).encode()),
            ChildRef::Leaf(j) if j < n_leaves => Ok(Child::Leaf(j).encode()),
            ChildRef::Node(j) => Err(out_of_range(t, i, "node", j, n_nodes)),
            ChildRef::Leaf(j) => Err(out_of_range(t, i, "leaf", j, n_leaves)),
        };
        let (left, right) = (encode(n.left)?, encode(n.right)?);
        nodes.push(Node::new(
            n.feature,
            n.threshold,
            n.default_left,
            left,
            right,
        ));
        gains.push(n.gain);
    }
    for (j, l) in tf.leaves.iter().enumerate() {
        finite(format!("tree {t} leaf {j} value"), l.value as f64)?;
    }
    check_shape(t, &nodes, n_leaves)?;
    Ok(Tree {
        nodes,
        gains,
        leaf_values: tf.leaves.iter().map(|l| l.value).collect(),
        leaf_counts: tf.leaves.iter().map(|l| l.count).collect(),
    })
}

fn out_of_range(
    tree: usize,
    node: usize,
    kind: &'static str,
    index: usize,
    available: usize,
) -> ModelError {
    ModelError::ChildOutOfRange {
        tree,
        node,
        kind,
        index,
        available,
    }
}

/// Every node and leaf is reached exactly once from node 0: no cycle (so
/// prediction terminates), no sharing, no orphans.
fn check_shape(t: usize, nodes: &[Node], n_leaves: usize) -> Result<(), ModelError> {
    let not_a_tree = |detail: String| ModelError::NotATree { tree: t, detail };
    if nodes.is_empty() {
        return Ok(());
    }
    let mut node_seen = vec![false; nodes.len()];
    let mut leaf_seen = vec![false; n_leaves];
    let mut stack = vec![Child::Node(0)];
    while let Some(c) = stack.pop() {
        match c {
            Child::Node(i) => {
                if std::mem::replace(&mut node_seen[i], true) {
                    return Err(not_a_tree(format!("node {i} is reached twice")));
                }
                stack.push(Child::decode(nodes[i].children[1]));
                stack.push(Child::decode(nodes[i].children[0]));
            }
            Child::Leaf(j) => {
                if std::mem::replace(&mut leaf_seen[j], true) {
                    return Err(not_a_tree(format!("leaf {j} is reached twice")));
                }
            }
        }
    }
    if let Some(i) = node_seen.iter().position(|s| !s) {
        return Err(not_a_tree(format!(
            "node {i} is not reachable from the root"
        )));
    }
    if let Some(j) = leaf_seen.iter().position(|s| !s) {
        return Err(not_a_tree(format!(
            "leaf {j} is not reachable from the root"
        )));
    }
    Ok(())
}

impl Booster {
    /// The model as pretty-printed JSON (see the module doc for the layout).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&ModelFile::from(self.clone()))
            .expect("a model file always serialises")
    }

    /// Reads a model written by [`Booster::to_json`], checking that it is
    /// consistent before anything can run on it.
    pub fn from_json(text: &str) -> Result<Booster, ModelError> {
        let file: ModelFile = serde_json::from_str(text)?;
        Booster::try_from(file)
    }
}
