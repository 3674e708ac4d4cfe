//! zonekeeper: keeps DNS in line with a git repository. The binary in `main.rs` is a thin
//! CLI over these modules; see DESIGN.md for the way the arrows point between them.

pub mod daemon;
pub mod desired;
pub mod export;
pub mod memory;
pub mod model;
pub mod plan;
pub mod progress;
pub mod reconcile;
pub mod secrets;
pub mod sources;
pub mod targets;
pub mod wanted;
