//! A small client for Technitium DNS Server's HTTP API (v15): form-encoded POSTs with the
//! token in an `Authorization: Bearer` header (never in a URL, so it cannot leak into logs
//! or errors), the JSON envelope checked on every answer (errors arrive with HTTP 200 and
//! `"status": "error"`), a request-rate limit, and retries with backoff on transport errors
//! and 5xx — never on an answer that says the request itself is wrong.

use std::fmt;
use std::time::Duration;

/// A secret that prints as `***`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(s: impl Into<String>) -> Token {
        Token(s.into())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Technitium rejected the API token: {0}")]
    InvalidToken(String),
    #[error("Technitium asks this user for a second factor; use an API token instead of a user login")]
    TwoFactorRequired,
    #[error("Technitium refused {endpoint}: {message}")]
    Api { endpoint: String, message: String },
    #[error("cannot reach Technitium at {base}{endpoint}: {detail}")]
    Transport { base: String, endpoint: String, detail: String },
    #[error("Technitium answered HTTP {status} on {endpoint}")]
    Http {
        endpoint: String,
        status: u16,
        /// The seconds a 429 or 503 asks us to wait (`Retry-After`), at most a minute.
        retry_after: Option<u64>,
    },
    #[error("unexpected answer from Technitium on {endpoint}: {detail}")]
    Protocol { endpoint: String, detail: String },
}

impl ApiError {
    /// Worth another try: the request may not have been handled at all.
    fn transient(&self) -> bool {
        match self {
            ApiError::Transport { .. } => true,
            // 429: refused before it was handled (RFC 6585), by the server or a proxy before it.
            ApiError::Http { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// The server's message when it refused the request.
    pub fn api_message(&self) -> Option<&str> {
        match self {
            ApiError::Api { message, .. } => Some(message),
            _ => None,
        }
    }
}

/// An error and its causes in one line, without the URL (we name it ourselves).
fn chain(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// How often and how patiently to try.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub timeout: Duration,
    /// Requests per second at most.
    pub rate: f64,
    /// Tries per request (1 = no retry).
    pub attempts: u32,
}

/// The waits between tries: 1 s, 2 s, 4 s … at most 30 s, each with up to as much again of
/// random jitter (backon), so that many clients a failure knocked over do not all come back
/// in the same second. `retries` waits, for `retries + 1` tries.
pub fn backoff(retries: u32) -> backon::ExponentialBackoff {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::new()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(30))
        .with_factor(2.0)
        .with_jitter()
        .with_max_times(retries as usize)
        .build()
}

/// At most `rate` requests per second, one at a time (no burst): governor's GCRA limiter.
fn limiter<C: governor::clock::Clock>(
    rate: f64,
    clock: C,
) -> governor::RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    C,
    governor::middleware::NoOpMiddleware<C::Instant>,
> {
    // `rate` is held to 0.01–100000 by the settings' schema (src/desired/format.rs).
    let period = Duration::from_secs_f64(1.0 / rate.clamp(0.01, 100_000.0));
    let quota = governor::Quota::with_period(period).unwrap_or_else(|| governor::Quota::per_second(nonzero(1)));
    governor::RateLimiter::direct_with_clock(quota, clock)
}

fn nonzero(n: u32) -> std::num::NonZeroU32 {
    std::num::NonZeroU32::new(n).unwrap_or(std::num::NonZeroU32::MIN)
}

pub struct Client {
    /// The target's name, for the requests it reports (`telemetry`).
    target: String,
    http: reqwest::Client,
    base: String,
    token: Token,
    policy: Policy,
    pace: governor::DefaultDirectRateLimiter,
}

impl Client {
    pub fn new(target: &str, http: reqwest::Client, base: &str, token: Token, policy: Policy) -> Client {
        let pace = limiter(policy.rate, governor::clock::DefaultClock::default());
        Client { target: target.to_string(), http, base: base.trim_end_matches('/').to_string(), token, policy, pace }
    }

    /// Waits for this request's slot under the rate limit.
    async fn pace(&self) {
        self.pace.until_ready().await;
    }

    async fn once(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
        text: Option<&str>,
    ) -> Result<serde_json::Value, ApiError> {
        self.pace().await;
        let started = std::time::Instant::now();
        let result = self.send(endpoint, params, text).await;
        let status = match &result {
            Ok(_) => "ok".to_string(),
            Err(ApiError::Api { .. }) => "api_error".to_string(),
            Err(ApiError::InvalidToken(_)) | Err(ApiError::TwoFactorRequired) => "invalid_token".to_string(),
            Err(ApiError::Http { status, .. }) => format!("http_{status}"),
            Err(ApiError::Transport { .. }) => "transport".to_string(),
            Err(_) => "protocol".to_string(),
        };
        crate::targets::telemetry::request(&self.target, endpoint, &status, started.elapsed().as_secs_f64());
        result
    }

    async fn send(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
        text: Option<&str>,
    ) -> Result<serde_json::Value, ApiError> {
        let url = format!("{}{endpoint}", self.base);
        let transport = |e: reqwest::Error| ApiError::Transport {
            base: self.base.clone(),
            endpoint: endpoint.to_string(),
            detail: chain(e),
        };
        // An import of a large zone takes the server a while: give it ten times as long.
        let timeout = if text.is_some() { self.policy.timeout * 10 } else { self.policy.timeout };
        let request = self.http.post(&url).bearer_auth(&self.token.0).timeout(timeout);
        let request = match text {
            // Zone-file import: parameters in the query, the file as the body. The server
            // compares the content type exactly, so no charset parameter.
            Some(body) => request.query(params).header("Content-Type", "text/plain").body(body.to_string()),
            None => request.form(params),
        };
        let resp = request.send().await.map_err(transport)?;
        let status = resp.status();
        if !status.is_success() {
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| s.min(60));
            return Err(ApiError::Http { endpoint: endpoint.to_string(), status: status.as_u16(), retry_after });
        }
        let body: serde_json::Value = resp.json().await.map_err(|e| ApiError::Protocol {
            endpoint: endpoint.to_string(),
            detail: format!("not JSON ({})", e.without_url()),
        })?;
        let message = || body.get("errorMessage").and_then(|m| m.as_str()).unwrap_or("(no message)").to_string();
        match body.get("status").and_then(|s| s.as_str()) {
            Some("ok") => Ok(body.get("response").cloned().unwrap_or(serde_json::Value::Null)),
            Some("invalid-token") => Err(ApiError::InvalidToken(message())),
            Some("2fa-required") => Err(ApiError::TwoFactorRequired),
            Some("error") => Err(ApiError::Api { endpoint: endpoint.to_string(), message: message() }),
            other => Err(ApiError::Protocol {
                endpoint: endpoint.to_string(),
                detail: format!("status {:?}", other.unwrap_or("missing")),
            }),
        }
    }

    /// One API call, retried with backoff while the failure is transient.
    /// `done_if` names an error message that means a retried write had already been applied
    /// (e.g. "record already exists" after an add whose answer was lost), so it is not
    /// reported as a failure — and nothing is ever added twice.
    pub async fn call(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
        done_if: &[&str],
    ) -> Result<serde_json::Value, ApiError> {
        self.call_with(endpoint, params, None, done_if).await
    }

    /// A call whose body is text (zone-file import), with the same retries.
    pub async fn call_text(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
        text: &str,
    ) -> Result<serde_json::Value, ApiError> {
        self.call_with(endpoint, params, Some(text), &[]).await
    }

    async fn call_with(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
        text: Option<&str>,
        done_if: &[&str],
    ) -> Result<serde_json::Value, ApiError> {
        let mut attempt = 1;
        let mut waits = backoff(self.policy.attempts.saturating_sub(1));
        loop {
            match self.once(endpoint, params, text).await {
                Err(e) if attempt > 1 && e.api_message().is_some_and(|x| done_if.iter().any(|m| x.contains(m))) => {
                    return Ok(serde_json::Value::Null);
                }
                // A process told to stop does not wait to retry.
                Err(e) if e.transient() && attempt < self.policy.attempts && !crate::targets::stop_requested() => {
                    // At info: an unreachable server must not be silence at the default log level.
                    let asked = match &e {
                        ApiError::Http { retry_after: Some(s), .. } => Some(Duration::from_secs(*s)),
                        _ => None,
                    };
                    let Some(next) = waits.next() else { return Err(e) };
                    let wait = asked.unwrap_or(next);
                    tracing::info!(
                        endpoint,
                        attempt,
                        of = self.policy.attempts,
                        wait_seconds = wait.as_secs(),
                        error = %e,
                        "request failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_thirty_seconds_with_jitter() {
        for _ in 0..20 {
            let waits: Vec<Duration> = backoff(7).collect();
            assert_eq!(waits.len(), 7, "one wait per retry");
            for (w, base) in waits.iter().zip([1u64, 2, 4, 8, 16, 30, 30]) {
                let base = Duration::from_secs(base);
                assert!(*w >= base && *w <= base * 2, "{w:?} for a base of {base:?}");
            }
        }
        assert_eq!(backoff(0).count(), 0, "one try: no wait");
    }

    /// On governor's fake clock: one request per 1/rate seconds, no burst.
    #[test]
    fn requests_are_paced_to_the_rate_limit() {
        let clock = governor::clock::FakeRelativeClock::default();
        let limit = limiter(4.0, clock.clone());
        assert!(limit.check().is_ok(), "the first goes at once");
        assert!(limit.check().is_err(), "no burst");
        clock.advance(Duration::from_millis(249));
        assert!(limit.check().is_err());
        clock.advance(Duration::from_millis(1));
        assert!(limit.check().is_ok(), "the next one 250 ms later");
        let slow = limiter(0.5, clock.clone());
        assert!(slow.check().is_ok());
        clock.advance(Duration::from_millis(1999));
        assert!(slow.check().is_err(), "0.5 requests/s: one every 2 s");
    }

    #[test]
    fn tokens_never_print() {
        assert_eq!(format!("{:?}", Token::new("s3cret")), "***");
    }
}
