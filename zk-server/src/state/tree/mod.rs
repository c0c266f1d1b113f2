//! The data tree: znodes, their stats and path rules.

pub mod children;
pub mod data_tree;
pub mod node;
pub mod path;

pub use children::ChildSet;
pub use data_tree::{DataTree, Trigger};
pub use node::{ChildLinks, DataNode, NodeKind};
