//! A small client for Technitium DNS Server's HTTP API (v15): form-encoded POSTs with the
//! token in an `Authorization: Bearer` header (never in a URL, so it cannot leak into logs
//! or errors), the JSON envelope checked on every answer (errors arrive with HTTP 200 and
//! `"status": "error"`), a request-rate limit, and retries with backoff on transport errors
//! and 5xx — never on an answer that says the request itself is wrong.

use std::fmt;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

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

/// Backoff before try `n` (n ≥ 1): 1 s, 2 s, 4 s, 8 s … at most 30 s.
pub fn backoff(n: u32) -> Duration {
    Duration::from_secs((1u64 << (n.saturating_sub(1)).min(5)).min(30))
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Token,
    policy: Policy,
    next_slot: Mutex<Option<Instant>>,
}

impl Client {
    pub fn new(http: reqwest::Client, base: &str, token: Token, policy: Policy) -> Client {
        Client { http, base: base.trim_end_matches('/').to_string(), token, policy, next_slot: Mutex::new(None) }
    }

    /// Waits for this request's slot under the rate limit.
    async fn pace(&self) {
        let gap = Duration::from_secs_f64(1.0 / self.policy.rate);
        let mut next = self.next_slot.lock().await;
        let now = Instant::now();
        let at = match *next {
            Some(t) if t > now => t,
            _ => now,
        };
        *next = Some(at + gap);
        drop(next);
        tokio::time::sleep_until(at).await;
    }

    async fn once(
        &self,
        endpoint: &str,
        params: &[(&str, String)],
        text: Option<&str>,
    ) -> Result<serde_json::Value, ApiError> {
        self.pace().await;
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
        loop {
            match self.once(endpoint, params, text).await {
                Err(e) if attempt > 1 && e.api_message().is_some_and(|x| done_if.iter().any(|m| x.contains(m))) => {
                    return Ok(serde_json::Value::Null);
                }
                Err(e) if e.transient() && attempt < self.policy.attempts => {
                    // At info: an unreachable server must not be silence at the default log level.
                    let asked = match &e {
                        ApiError::Http { retry_after: Some(s), .. } => Some(Duration::from_secs(*s)),
                        _ => None,
                    };
                    let wait = asked.unwrap_or_else(|| backoff(attempt));
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
    fn backoff_doubles_up_to_thirty_seconds() {
        let b: Vec<u64> = (1..=7).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(b, [1, 2, 4, 8, 16, 30, 30]);
    }

    /// The limit is measured on tokio's paused clock, not the wall clock.
    #[tokio::test(start_paused = true)]
    async fn requests_are_paced_to_the_rate_limit() {
        let policy = Policy { timeout: Duration::from_secs(1), rate: 4.0, attempts: 1 };
        let client = Client::new(reqwest::Client::new(), "http://127.0.0.1:9", Token::new("x"), policy);
        let start = Instant::now();
        for _ in 0..9 {
            client.pace().await;
        }
        // the first goes at once, each next one 250 ms later
        assert_eq!(Instant::now() - start, Duration::from_millis(2000));
    }

    #[test]
    fn tokens_never_print() {
        assert_eq!(format!("{:?}", Token::new("s3cret")), "***");
    }
}
