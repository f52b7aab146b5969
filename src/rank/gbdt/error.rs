//! The errors of building a [`Dataset`](super::Dataset), fitting a
//! [`Booster`](super::Booster) and loading a model file.
//!
//! They are three types because callers react to them at three different
//! places: a bad table is the feature pipeline's bug, a bad setting is the
//! user's config, and a bad model file is a deployment problem. Every message is
//! lowercase and quotes the offending value so it can be acted on without a
//! debugger.

/// Why a [`Dataset`](super::Dataset) was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DatasetError {
    /// The table has no columns.
    #[error("dataset has no features")]
    NoFeatures,
    /// Two columns share a name (model files refer to features by name).
    #[error("feature name `{name}` appears more than once")]
    DuplicateFeature {
        /// The repeated name.
        name: String,
    },
    /// The feature buffer does not hold `n_rows × n_features` values.
    #[error("features has {got} values but {n_rows} rows × {n_features} features need {expected}")]
    FeatureLength {
        /// Values given.
        got: usize,
        /// Rows (the number of labels).
        n_rows: usize,
        /// Columns (the number of feature names).
        n_features: usize,
        /// `n_rows × n_features`.
        expected: usize,
    },
    /// A label is NaN or infinite.
    #[error("label of row {row} is {value}, expected a finite number")]
    NonFiniteLabel {
        /// The row.
        row: usize,
        /// The label.
        value: f32,
    },
    /// `group_offsets` is empty.
    #[error("group_offsets is empty; it needs at least one entry, 0")]
    NoOffsets,
    /// `group_offsets` does not start at 0.
    #[error("group_offsets starts at {first}, expected 0")]
    OffsetsStart {
        /// The first offset.
        first: usize,
    },
    /// `group_offsets` does not end at the number of rows.
    #[error("group_offsets ends at {last} but there are {n_rows} rows")]
    OffsetsEnd {
        /// The last offset.
        last: usize,
        /// Rows in the table.
        n_rows: usize,
    },
    /// `group_offsets` goes backwards.
    #[error("group_offsets decreases at group {group}: {from} then {to}")]
    OffsetsDecrease {
        /// The group whose end comes before its start.
        group: usize,
        /// Its start.
        from: usize,
        /// Its end.
        to: usize,
    },
}

/// Why [`Booster::fit`](super::Booster::fit) refused to train.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// A setting that cannot work.
    #[error("invalid gbdt setting {name} = {value}: expected {expected}")]
    BadConfig {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// The training set has no rows.
    #[error("training set has no rows")]
    EmptyTrain,
    /// More rows than 32-bit row indices can address.
    #[error("training set has {n_rows} rows; at most 4294967295 are supported")]
    TooManyRows {
        /// Rows given.
        n_rows: usize,
    },
    /// The validation set's columns differ from the training set's.
    #[error("validation feature {index} is {valid} but training feature {index} is {train}")]
    ValidFeatures {
        /// First differing column.
        index: usize,
        /// The training set's name there, quoted, or `(none)` past its end.
        train: String,
        /// The validation set's name there, quoted, or `(none)` past its end.
        valid: String,
    },
    /// A label the objective cannot use.
    #[error("{objective} objective needs labels in [0, {max}], but row {row} of the {set} set has {value}")]
    BadLabel {
        /// `lambdarank` or `binary`.
        objective: &'static str,
        /// The largest label allowed.
        max: f32,
        /// `training` or `validation`.
        set: &'static str,
        /// The row.
        row: usize,
        /// Its label.
        value: f32,
    },
    /// Early stopping on NDCG needs a group with some relevant item.
    #[error("validation set has no group with a positive label, so NDCG cannot be measured")]
    NoRankableValidGroup,
    /// Early stopping was asked for without a validation set.
    #[error("early_stopping_rounds is set but no validation set was given")]
    EarlyStoppingWithoutValid,
    /// Training produced NaN or infinite values instead of a model.
    #[error("round {round}: training diverged (a leaf value is {value}); lower the learning rate or raise lambda_l2")]
    Diverged {
        /// The round that produced it.
        round: usize,
        /// The bad leaf value.
        value: f64,
    },
}

/// Why a model file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The text is not JSON of the model's shape.
    #[error("not a valid gbdt model file: {0}")]
    Json(#[from] serde_json::Error),
    /// The `format` field names another kind of file.
    #[error("model format is `{found}`, expected `recsys-gbdt`")]
    Format {
        /// The format found.
        found: String,
    },
    /// A version this build cannot read.
    #[error("model version {found} is not supported (this build reads version 1)")]
    Version {
        /// The version found.
        found: u32,
    },
    /// The feature list is empty or repeats a name.
    #[error("model feature list is invalid: {detail}")]
    Features {
        /// What is wrong.
        detail: String,
    },
    /// A split refers to a feature the model does not have, or by another name.
    #[error("tree {tree} node {node}: feature {feature} (`{name}`) does not match the model's {n_features} features")]
    Feature {
        /// The tree.
        tree: usize,
        /// The node.
        node: usize,
        /// The feature index found.
        feature: usize,
        /// The feature name found.
        name: String,
        /// How many features the model has.
        n_features: usize,
    },
    /// A child pointer points past the end of the tree.
    #[error("tree {tree} node {node}: child {kind} {index} is out of range ({available} exist)")]
    ChildOutOfRange {
        /// The tree.
        tree: usize,
        /// The node.
        node: usize,
        /// `node` or `leaf`.
        kind: &'static str,
        /// The index found.
        index: usize,
        /// How many of that kind the tree has.
        available: usize,
    },
    /// The nodes do not form one tree (a cycle, a shared or an orphan child).
    #[error("tree {tree}: nodes do not form a tree: {detail}")]
    NotATree {
        /// The tree.
        tree: usize,
        /// What is wrong.
        detail: String,
    },
    /// A threshold, leaf value or score that is NaN or infinite.
    #[error("{what} is {value}, expected a finite number")]
    NonFinite {
        /// Where the value is.
        what: String,
        /// The value.
        value: f64,
    },
    /// Any other field with an impossible value.
    #[error("model field {field} is invalid: {detail}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        detail: String,
    },
}
