//! The operator's credentials: which token may be sent to which origin (scheme, host, port).
//! The repository says where a target is and may name a credential; only this file, kept
//! outside the repository, says where a token is read from and where it may go. So a pull
//! request that points a target elsewhere, or names another variable or file, gets no token.
//!
//! The file (`--credentials`, `ZONEKEEPER_CREDENTIALS`, else
//! `$XDG_CONFIG_HOME/zonekeeper/credentials.yaml` or `~/.config/zonekeeper/credentials.yaml`):
//! ```yaml
//! credentials:
//!   - origin: https://dns.home.arpa:5380
//!     tokenEnv: TECHNITIUM_TOKEN      # or tokenFile: /etc/zonekeeper/technitium.token
//!     name: home-dns                  # optional: what a target's `credential:` names
//!     caFile: /etc/zonekeeper/ca.pem  # optional: TLS trust for this origin
//! ```
//! Every token is read once, at start-up; a token's environment variable is then taken out of
//! the process environment so that no child (git, ssh) inherits it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::desired::SecretSource;

/// A secret value: never printed, never serialised.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a URL points, compared to decide where a token may go. Parsed by the same URL parser
/// reqwest connects with, so the check and the connection agree on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    pub fn of(url: &str) -> Option<Origin> {
        let u = reqwest::Url::parse(url).ok()?;
        let scheme = u.scheme().to_string();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        Some(Origin { host: u.host_str()?.to_ascii_lowercase(), port: u.port_or_known_default()?, scheme })
    }

    pub fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }

    pub fn is_plain_http(&self) -> bool {
        self.scheme == "http"
    }

    /// True for the name `localhost`, which a client must pin to 127.0.0.1 rather than look up
    /// (a hosts file can point it anywhere).
    pub fn is_localhost_name(&self) -> bool {
        self.host == "localhost"
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// One credential: a token bound to one origin, with the TLS trust used for it.
#[derive(Debug)]
pub struct Binding {
    pub name: Option<String>,
    pub origin: Origin,
    pub source: SecretSource,
    /// The token as read at start-up, or why it could not be read.
    token: Result<Secret, String>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_tls_verify: bool,
}

/// What a target gets for its requests: the token and the TLS settings that go with it.
#[derive(Debug)]
pub struct Grant<'a> {
    pub token: &'a Secret,
    pub ca_file: Option<&'a Path>,
    pub insecure_skip_tls_verify: bool,
}

/// What a target asks for: its URL, and what the repository says about its credential.
#[derive(Debug, Default)]
pub struct Request<'a> {
    pub url: &'a str,
    /// The target's `credential:`.
    pub name: Option<&'a str>,
    /// The target's `tokenEnv`/`tokenFile` (the format before credentials were bound): it may
    /// only repeat what the bound credential says.
    pub source: Option<&'a SecretSource>,
    /// The target's `caFile` and `insecureSkipTlsVerify`: likewise.
    pub ca_file: Option<&'a Path>,
    pub insecure_skip_tls_verify: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Denied {
    #[error("the target's url is not an http:// or https:// URL with a host, so no token is sent")]
    BadUrl,
    #[error("no token is sent over plain http to {0}: use https:// (plain http carries a token only to localhost)")]
    PlainHttp(Origin),
    #[error(
        "no credential is bound to {origin}{where_}, so no token is sent there. The operator binds a token to an origin \
         outside the repository; add to the credentials file:\n  credentials:\n    - origin: {origin}\n      tokenEnv: \
         TECHNITIUM_TOKEN    # or tokenFile: /path/to/token"
    )]
    Unbound { origin: Origin, where_: String },
    #[error(
        "credential `{name}` is bound to another origin, not to {origin}: no token is sent (a repository cannot redirect a token)"
    )]
    Elsewhere { name: String, origin: Origin },
    #[error("several credentials are bound to {origin} ({names}): name one with `credential:` in the target")]
    Ambiguous { origin: Origin, names: String },
    #[error(
        "the target's {field} differs from the credential bound to {origin}: no token is sent. A repository cannot \
         choose where a token is read from; remove {field} from the target (the credentials file decides)"
    )]
    SourceMismatch { field: &'static str, origin: Origin },
    #[error(
        "the target's {field} is not honoured for a token: set it on the credential bound to {origin} in the \
         credentials file instead (the repository cannot choose whom a token is trusted to)"
    )]
    TlsMismatch { field: &'static str, origin: Origin },
    #[error("the token of the credential bound to {origin} cannot be read: {why}")]
    Unreadable { origin: Origin, why: String },
}

/// The operator's credentials, read once at start-up.
#[derive(Debug, Default)]
pub struct Secrets {
    bindings: Vec<Binding>,
    /// Where they were read from, for messages; `None` when there is no file.
    file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the credentials file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDecl {
    #[serde(default)]
    credentials: Vec<BindingDecl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BindingDecl {
    origin: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    token_env: Option<String>,
    #[serde(default)]
    token_file: Option<PathBuf>,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
}

impl Secrets {
    /// No credentials at all: every target that needs a token is refused, and says why.
    pub fn none() -> Secrets {
        Secrets::default()
    }

    /// Credentials made in code (tests, benchmarks): `(origin URL, token)`.
    pub fn of(pairs: &[(&str, &str)]) -> Secrets {
        let bindings = pairs
            .iter()
            .filter_map(|(url, token)| {
                Some(Binding {
                    name: None,
                    origin: Origin::of(url)?,
                    source: SecretSource::Env(String::new()),
                    token: Ok(Secret::new(*token)),
                    ca_file: None,
                    insecure_skip_tls_verify: false,
                })
            })
            .collect();
        Secrets { bindings, file: None }
    }

    /// Reads the credentials file at `path` and every token it names. `required` says that
    /// the operator named the file: then a missing file is an error, not an empty set.
    pub fn load(path: &Path, required: bool) -> Result<Secrets, LoadError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Secrets::none()),
            Err(source) => return Err(LoadError::Read { path: shown, source }),
        };
        let invalid = |message: String| LoadError::Invalid { path: shown.clone(), message };
        let decl: FileDecl = if text.trim().is_empty() {
            FileDecl { credentials: Vec::new() }
        } else {
            serde_saphyr::from_str(&text).map_err(|e| invalid(parse_message(&e)))?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut bindings: Vec<Binding> = Vec::new();
        for (i, b) in decl.credentials.into_iter().enumerate() {
            let at = format!("credentials[{i}]");
            let origin = match Origin::of(&b.origin) {
                Some(o) if reqwest::Url::parse(&b.origin).is_ok_and(|u| u.path() == "/" && u.query().is_none()) => o,
                _ => {
                    return Err(invalid(format!(
                        "{at}.origin: must be scheme://host[:port], e.g. https://dns.home.arpa:5380"
                    )));
                }
            };
            if origin.is_plain_http() && !origin.is_loopback() {
                return Err(invalid(format!(
                    "{at}.origin: plain http carries a token only to localhost; use https:// for {origin}"
                )));
            }
            if bindings.iter().any(|o| o.origin == origin && o.name == b.name) {
                return Err(invalid(format!(
                    "{at}: a second credential for {origin} under the same name; give each a distinct `name`"
                )));
            }
            let source = match (b.token_env, b.token_file) {
                (Some(v), None) if !v.is_empty() => SecretSource::Env(v),
                (None, Some(f)) => SecretSource::File(base.join(f)),
                _ => return Err(invalid(format!("{at}: give exactly one of tokenEnv or tokenFile"))),
            };
            if let Some(n) = &b.name
                && bindings.iter().any(|o| o.name.as_ref() == Some(n))
            {
                return Err(invalid(format!("{at}.name: credential `{n}` is named twice")));
            }
            let token = read_token(&source);
            bindings.push(Binding {
                name: b.name,
                origin,
                source,
                token,
                ca_file: b.ca_file.map(|f| base.join(f)),
                insecure_skip_tls_verify: b.insecure_skip_tls_verify,
            });
        }
        Ok(Secrets { bindings, file: Some(path.to_path_buf()) })
    }

    /// Takes the tokens `old` read from environment variables for the same variables here:
    /// a reload (SIGHUP) reads the file again, but the variables were taken out of the
    /// environment at start-up.
    pub fn keep_env_tokens(&mut self, old: &Secrets) {
        for b in &mut self.bindings {
            let SecretSource::Env(var) = &b.source else { continue };
            if b.token.is_ok() {
                continue;
            }
            let kept = old.bindings.iter().find(|o| matches!(&o.source, SecretSource::Env(v) if v == var));
            if let Some(Ok(token)) = kept.map(|o| &o.token) {
                b.token = Ok(token.clone());
            }
        }
    }

    /// Every file a credential reads (token files and CA files), for the CLI to check that
    /// none lies in the repository.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.bindings.iter().flat_map(|b| {
            let token = match &b.source {
                SecretSource::File(f) => Some(f.as_path()),
                SecretSource::Env(_) => None,
            };
            token.into_iter().chain(b.ca_file.as_deref())
        })
    }

    /// The environment variables that hold tokens: the CLI takes them out of the process
    /// environment once they are read, before any thread or child process starts.
    pub fn env_vars(&self) -> impl Iterator<Item = &str> {
        self.bindings.iter().filter_map(|b| match &b.source {
            SecretSource::Env(v) if !v.is_empty() => Some(v.as_str()),
            _ => None,
        })
    }

    /// The token for a target's request, or why none is sent. Nothing the repository says
    /// can pick the token's destination or where it is read from.
    pub fn grant(&self, request: &Request<'_>) -> Result<Grant<'_>, Denied> {
        let origin = Origin::of(request.url).ok_or(Denied::BadUrl)?;
        if origin.is_plain_http() && !origin.is_loopback() {
            return Err(Denied::PlainHttp(origin));
        }
        let here: Vec<&Binding> = self
            .bindings
            .iter()
            .filter(|b| b.origin == origin && request.name.is_none_or(|n| b.name.as_deref() == Some(n)))
            .collect();
        let binding = match here.as_slice() {
            [one] => *one,
            [] => {
                // Which origin it is bound to is the operator's business, not the pull request's.
                if let Some(name) = request.name
                    && self.bindings.iter().any(|b| b.name.as_deref() == Some(name))
                {
                    return Err(Denied::Elsewhere { name: name.to_string(), origin });
                }
                let where_ = match (&self.file, request.name) {
                    (Some(f), Some(n)) => format!(" under the name `{n}` in {}", f.display()),
                    (Some(f), None) => format!(" in {}", f.display()),
                    (None, Some(n)) => format!(" under the name `{n}` (no credentials file)"),
                    (None, None) => " (no credentials file)".to_string(),
                };
                return Err(Denied::Unbound { origin, where_ });
            }
            many => {
                let names: Vec<&str> = many.iter().map(|b| b.name.as_deref().unwrap_or("unnamed")).collect();
                return Err(Denied::Ambiguous { origin, names: names.join(", ") });
            }
        };
        if let Some(asked) = request.source {
            let same = match (asked, &binding.source) {
                (SecretSource::Env(a), SecretSource::Env(b)) => a == b,
                (SecretSource::File(a), SecretSource::File(b)) => same_file(a, b),
                _ => false,
            };
            if !same {
                let field = if matches!(asked, SecretSource::Env(_)) { "tokenEnv" } else { "tokenFile" };
                return Err(Denied::SourceMismatch { field, origin });
            }
        }
        if request.insecure_skip_tls_verify && !binding.insecure_skip_tls_verify {
            return Err(Denied::TlsMismatch { field: "insecureSkipTlsVerify", origin });
        }
        if let Some(asked) = request.ca_file
            && !binding.ca_file.as_deref().is_some_and(|b| same_file(asked, b))
        {
            return Err(Denied::TlsMismatch { field: "caFile", origin });
        }
        let token =
            binding.token.as_ref().map_err(|why| Denied::Unreadable { origin: origin.clone(), why: why.clone() })?;
        Ok(Grant {
            token,
            ca_file: binding.ca_file.as_deref(),
            insecure_skip_tls_verify: binding.insecure_skip_tls_verify,
        })
    }
}

/// `localhost` or a loopback address (`[::1]` with or without brackets): where plain http
/// may carry a secret. Shared with the git transport's check.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Where the credentials file is when the operator names none.
pub fn default_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("zonekeeper/credentials.yaml"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/zonekeeper/credentials.yaml"))
}

fn read_token(source: &SecretSource) -> Result<Secret, String> {
    let value = match source {
        SecretSource::Env(var) => {
            std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))?
        }
        SecretSource::File(path) => {
            std::fs::read_to_string(path).map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?
        }
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(match source {
            SecretSource::Env(var) => format!("the environment variable {var} is empty"),
            SecretSource::File(path) => format!("the token file {} is empty", path.display()),
        });
    }
    Ok(Secret::new(value))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// What is wrong with the file, without any value from it: serde's own messages quote the
/// value they could not take (`invalid type: string "…"`), and that may be a token put in the
/// wrong place. An unknown or missing key is named: keys are not secrets.
fn parse_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let place = e.location().map(|l| format!("line {}: ", l.line())).unwrap_or_default();
    for what in ["unknown field `", "missing field `"] {
        // `unknown field `x`` names a key only: the part up to its closing backtick.
        if let Some(at) = text.find(what)
            && let Some(len) = text[at + what.len()..].find('`')
        {
            let named = &text[at..at + what.len() + len + 1];
            return format!(
                "{place}{named}; a credential has origin, tokenEnv or tokenFile, and optionally name, caFile, insecureSkipTlsVerify"
            );
        }
    }
    format!(
        "{place}not a valid credentials file: `credentials:` is a list of {{origin, tokenEnv or tokenFile, name, caFile, insecureSkipTlsVerify}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(yaml: &str) -> (tempfile::TempDir, Result<Secrets, LoadError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.yaml");
        std::fs::write(&path, yaml).unwrap();
        std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
        let s = Secrets::load(&path, true);
        (dir, s)
    }

    fn ask(url: &str) -> Request<'_> {
        Request { url, ..Request::default() }
    }

    #[test]
    fn a_token_goes_only_to_its_own_origin() {
        let (_d, s) = store("credentials:\n  - {origin: \"https://dns.home.arpa:5380\", tokenFile: token}\n");
        let s = s.unwrap();
        assert_eq!(s.grant(&ask("https://DNS.home.arpa:5380/")).unwrap().token.expose(), "s3cret");
        for other in [
            "https://dns.home.arpa:5381",
            "http://dns.home.arpa:5380",
            "https://dns.home.arpa",
            "https://evil.example:5380",
            "https://dns.home.arpa.evil.example:5380",
            "https://dns.home.arpa:5380@evil.example",
        ] {
            assert!(s.grant(&ask(other)).is_err(), "{other} must get no token");
        }
    }

    #[test]
    fn plain_http_carries_a_token_only_to_loopback() {
        let s = Secrets::of(&[("http://dns.lan:5380", "t"), ("http://127.0.0.1:5380", "t"), ("http://[::1]:80", "t")]);
        let (_d, loaded) = store("credentials:\n  - {origin: \"http://dns.lan:5380\", tokenFile: token}\n");
        assert!(loaded.err().is_some_and(|e| e.to_string().contains("plain http carries a token only to localhost")));
        assert!(matches!(s.grant(&ask("http://dns.lan:5380")), Err(Denied::PlainHttp(_))));
        assert!(s.grant(&ask("http://127.0.0.1:5380")).is_ok());
        assert!(s.grant(&ask("http://[::1]/")).is_ok());
    }

    #[test]
    fn the_repository_cannot_pick_where_a_token_is_read_from() {
        let (d, s) = store("credentials:\n  - {origin: \"https://dns.lan\", tokenFile: token, name: lan}\n");
        let s = s.unwrap();
        let other = SecretSource::Env("AWS_SECRET_ACCESS_KEY".into());
        let r = Request { url: "https://dns.lan", source: Some(&other), ..Request::default() };
        assert!(matches!(s.grant(&r), Err(Denied::SourceMismatch { field: "tokenEnv", .. })));
        let same = SecretSource::File(d.path().join("token"));
        let r = Request { url: "https://dns.lan", source: Some(&same), ..Request::default() };
        assert!(s.grant(&r).is_ok(), "repeating what the operator bound is fine");
        let r = Request { url: "https://dns.lan", insecure_skip_tls_verify: true, ..Request::default() };
        assert!(matches!(s.grant(&r), Err(Denied::TlsMismatch { .. })));
        let r = Request { url: "https://other.lan", name: Some("lan"), ..Request::default() };
        let err = s.grant(&r).unwrap_err();
        assert!(matches!(err, Denied::Elsewhere { .. }), "{err}");
        assert!(!err.to_string().contains("s3cret"));
    }

    #[test]
    fn two_credentials_for_one_origin_need_a_name() {
        let (_d, s) = store(
            "credentials:\n  - {origin: \"https://dns.lan\", tokenFile: token, name: a}\n  - {origin: \"https://dns.lan\", tokenEnv: ZK_UNSET_VAR_FOR_TEST, name: b}\n",
        );
        let s = s.unwrap();
        assert!(matches!(s.grant(&ask("https://dns.lan")), Err(Denied::Ambiguous { .. })));
        let r = Request { url: "https://dns.lan", name: Some("a"), ..Request::default() };
        assert!(s.grant(&r).is_ok());
        let r = Request { url: "https://dns.lan", name: Some("b"), ..Request::default() };
        assert!(matches!(s.grant(&r), Err(Denied::Unreadable { .. })));
    }

    #[test]
    fn a_bad_file_is_refused_with_the_entry() {
        let (_d, s) = store("credentials:\n  - {origin: \"https://dns.lan/api\", tokenFile: token}\n");
        assert!(s.unwrap_err().to_string().contains("credentials[0].origin"));
        let (_d, s) = store("credentials:\n  - {origin: \"https://dns.lan\", token: s3cret}\n");
        let e = s.unwrap_err().to_string();
        assert!(e.contains("unknown field `token`") && !e.contains("s3cret"), "{e}");
        // a value of the wrong type is not quoted back either (it may be a token)
        let (_d, s) =
            store("credentials:\n  - {origin: \"https://dns.lan\", tokenFile: token, insecureSkipTlsVerify: s3cret}\n");
        let e = s.unwrap_err().to_string();
        assert!(e.contains("line 2") && !e.contains("s3cret"), "{e}");
        let (_d, s) = store(
            "credentials:\n  - {origin: \"https://dns.lan\", tokenFile: token}\n  - {origin: \"https://DNS.lan:443\", tokenFile: token}\n",
        );
        assert!(s.unwrap_err().to_string().contains("same name"));
        let missing = Secrets::load(Path::new("/nonexistent/credentials.yaml"), false).unwrap();
        assert!(missing.grant(&ask("https://dns.lan")).is_err());
        assert!(Secrets::load(Path::new("/nonexistent/credentials.yaml"), true).is_err());
    }
}
