//! API tokens and webhook checks.
//!
//! A token is `zk_` and 64 hex digits: 256 bits from the operating system's random source.
//! It is shown once, at creation; the state document keeps only its SHA-256. A presented
//! token is hashed and compared with every stored hash in constant time (`subtle`), so
//! neither the token nor which name it matched leaks through timing.
//!
//! Git webhooks are checked by the forge's own scheme, not by our tokens: GitHub signs the
//! body with HMAC-SHA256 (`X-Hub-Signature-256: sha256=<hex>`), GitLab sends the secret back
//! in `X-Gitlab-Token`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::state::{StateDoc, StateError, StateStore, StoredToken};

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("a token named `{0}` exists; revoke it first, or pick another name")]
    Exists(String),
    #[error("no token is named `{0}`")]
    Unknown(String),
    #[error("a token name is 1 to 64 letters, digits, `-`, `_` or `.`; `{0}` is not")]
    BadName(String),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Makes a token named `name`, keeps its hash, and returns the token: the only time it is
/// ever seen.
pub fn create(file: &StateStore, name: &str, now: &str) -> Result<String, TokenError> {
    if !valid_name(name) {
        return Err(TokenError::BadName(name.to_string()));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| TokenError::Random(e.to_string()))?;
    let token = format!("zk_{}", hex(&bytes));
    let stored = StoredToken { sha256: sha256_hex(&token), created: now.to_string() };
    file.update(|doc| {
        if doc.tokens.contains_key(name) {
            return Err(TokenError::Exists(name.to_string()));
        }
        doc.tokens.insert(name.to_string(), stored.clone());
        Ok(())
    })?;
    Ok(token)
}

pub fn revoke(file: &StateStore, name: &str) -> Result<(), TokenError> {
    file.update(|doc| match doc.tokens.remove(name) {
        Some(_) => Ok(()),
        None => Err(TokenError::Unknown(name.to_string())),
    })
}

/// Equality of two byte strings in constant time for strings of one length (and no early
/// exit on the first differing byte).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// The name of the token `presented` is, if it is a current one. Every stored hash is
/// compared, whichever matches.
pub fn check(doc: &StateDoc, presented: &str) -> Option<String> {
    let hash = sha256_hex(presented);
    let mut found = None;
    for (name, t) in &doc.tokens {
        if same(hash.as_bytes(), t.sha256.as_bytes()) {
            found = Some(name.clone());
        }
    }
    found
}

/// A webhook secret, read from a file or the environment by the operator.
#[derive(Clone)]
pub struct WebhookSecret(String);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl WebhookSecret {
    pub fn new(secret: String) -> WebhookSecret {
        WebhookSecret(secret)
    }

    /// True when a webhook request carries a valid GitHub signature of `body` or the GitLab
    /// token; false for anything else (no header, a malformed one, a wrong one).
    pub fn verify(&self, github_signature: Option<&str>, gitlab_token: Option<&str>, body: &[u8]) -> bool {
        if let Some(sig) = github_signature {
            let Some(given) = sig.strip_prefix("sha256=").and_then(unhex) else { return false };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(self.0.as_bytes()) else { return false };
            mac.update(body);
            return mac.verify_slice(&given).is_ok();
        }
        if let Some(token) = gitlab_token {
            return same(token.as_bytes(), self.0.as_bytes());
        }
        false
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_shown_once_kept_hashed_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateStore::from(crate::daemon::state::StateFile::new(dir.path().join("state.json")));
        let token = create(&file, "ci", "2026-12-07T00:00:00Z").unwrap();
        assert!(token.starts_with("zk_") && token.len() == 67, "{token}");
        let text = std::fs::read_to_string(file.path().unwrap()).unwrap();
        assert!(!text.contains(&token[3..]), "the token itself is never stored");
        assert_eq!(check(&file.read().unwrap(), &token).as_deref(), Some("ci"));
        assert_eq!(check(&file.read().unwrap(), "zk_00"), None);
        assert!(matches!(create(&file, "ci", "t"), Err(TokenError::Exists(_))));
        let other = create(&file, "ui", "t").unwrap();
        assert_ne!(other, token);
        revoke(&file, "ci").unwrap();
        assert_eq!(check(&file.read().unwrap(), &token), None);
        assert_eq!(check(&file.read().unwrap(), &other).as_deref(), Some("ui"));
        assert!(matches!(revoke(&file, "ci"), Err(TokenError::Unknown(_))));
        assert!(matches!(create(&file, "a b", "t"), Err(TokenError::BadName(_))));
    }

    #[test]
    fn same_compares_every_byte() {
        assert!(same(b"abcdef", b"abcdef"));
        assert!(!same(b"abcdef", b"abcdeg"));
        assert!(!same(b"xbcdef", b"abcdef"));
        assert!(!same(b"abc", b"abcdef"));
        assert!(!same(b"", b"a"));
        assert!(same(b"", b""));
    }

    #[test]
    fn webhooks_are_checked_by_the_forges_scheme() {
        let secret = WebhookSecret::new("It's a Secret to Everybody".into());
        // GitHub's documented example: this secret, the body "Hello, World!".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(secret.verify(Some(sig), None, b"Hello, World!"));
        assert!(!secret.verify(Some(sig), None, b"Hello, World?"));
        assert!(!secret.verify(Some("sha1=757107ea"), None, b"Hello, World!"));
        assert!(!secret.verify(Some("sha256=zz"), None, b"Hello, World!"));
        assert!(secret.verify(None, Some("It's a Secret to Everybody"), b"{}"));
        assert!(!secret.verify(None, Some("It's a secret to everybody"), b"{}"));
        assert!(!secret.verify(None, None, b"{}"));
        assert!(!format!("{secret:?}").contains("Secret to"));
    }
}
