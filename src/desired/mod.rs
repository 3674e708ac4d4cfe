//! The desired state: YAML files in a repository, parsed, schema-checked and semantically
//! checked into typed values. Nothing here touches a target.

pub mod diagnostic;
pub mod files;
pub mod format;
pub mod records;
pub mod state;
pub mod yaml;

pub use diagnostic::{Diagnostic, Invalid, Pos};
pub use state::{
    DesiredRecord, DesiredState, SecretSource, Settings, TargetKind, TargetSettings, TechnitiumSettings, View,
    ZoneSettings, load, load_from,
};
