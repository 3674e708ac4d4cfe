//! What targets tell whoever watches them about their requests: the `run` process sets a
//! recorder that feeds its metrics; the CLI sets none, and then recording costs one check.

use std::sync::OnceLock;

/// Receives one line per API request a target made.
pub trait Recorder: Send + Sync {
    /// `status` is low-cardinality: `ok`, `api_error`, `invalid_token`, `http_<code>`,
    /// `transport`, `protocol`.
    fn request(&self, target: &str, endpoint: &str, status: &str, seconds: f64);
}

static RECORDER: OnceLock<Box<dyn Recorder>> = OnceLock::new();

/// Sets the process's recorder; only the first call counts.
pub fn set(recorder: Box<dyn Recorder>) {
    let _ = RECORDER.set(recorder);
}

pub fn request(target: &str, endpoint: &str, status: &str, seconds: f64) {
    if let Some(r) = RECORDER.get() {
        r.request(target, endpoint, status, seconds);
    }
}
