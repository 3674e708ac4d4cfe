//! The web UI: one page with its style and script inside it, embedded in the binary, so it
//! works air-gapped and needs no build step. It reads the same API as everyone else.

pub const PAGE: &str = include_str!("ui.html");
