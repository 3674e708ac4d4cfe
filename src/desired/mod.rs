//! The desired state: YAML files in a repository, parsed, schema-checked and semantically
//! checked into typed values. Nothing here touches a target.

mod checks;
pub mod diagnostic;
pub mod files;
pub mod format;
pub mod records;
mod schema_errors;
pub mod settings;
pub mod state;
pub mod yaml;

pub use diagnostic::{Diagnostic, Invalid, Pos};
pub use settings::{SecretSource, Settings, TargetKind, TargetSettings, TechnitiumSettings, View, ZoneSettings};
pub use state::{DesiredState, Purpose, load, load_for, load_from};
