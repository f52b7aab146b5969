//! Data in: loading and validating events and item features (flat, or the raw
//! RetailRocket properties over time), the time split,
//! dense ids and the interaction matrix — plus a synthetic data generator.

pub mod error;
pub mod events;
pub mod generate;
pub mod ids;
pub mod items;
pub mod labels;
pub mod matrix;
pub mod parquet;
pub mod properties;
pub mod split;
pub mod table;
pub mod time;
pub mod trainset;

pub use error::DataError;
pub use events::{load_events, BadRows, EventKind, EventLog, LoadedEvents};
pub use ids::IdMap;
pub use items::{load_item_features, ItemFeatures, ItemInfo};
pub use labels::{ground_truth, TestUser};
pub use matrix::{interaction_matrix, EventWeights};
pub use properties::{load_item_properties, LoadedProperties};
pub use split::{split, Cutoff, Protocol, Split};
pub use trainset::TrainSet;
