//! A git server over HTTP or HTTPS as forges run one: the real `git http-backend` (smart HTTP,
//! fetch and push) behind HTTP basic auth. Every request without the right user and token is answered
//! `401` with a `WWW-Authenticate` challenge, as GitHub, GitLab and Gitea do for a private
//! repository; the backend only ever sees authenticated requests.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// The `Authorization` header, decoded (`user:token`), if any.
    pub login: Option<String>,
    pub status: u16,
}

struct Shared {
    root: PathBuf,
    user: String,
    token: String,
    seen: Vec<Seen>,
}

pub struct GitHttp {
    pub addr: std::net::SocketAddr,
    scheme: &'static str,
    shared: Arc<Mutex<Shared>>,
}

impl GitHttp {
    /// Serves the bare repositories under `root` on a free port of 127.0.0.1, to `user` with
    /// `token` only.
    pub fn start(root: &std::path::Path, user: &str, token: &str) -> GitHttp {
        GitHttp::serve(root, user, token, None)
    }

    /// The same server over TLS, with the certificate and key in PEM (the certificate must
    /// name 127.0.0.1). Clients trust it through `SSL_CERT_FILE` / `GIT_SSL_CAINFO`.
    pub fn start_tls(root: &std::path::Path, user: &str, token: &str, cert_pem: &[u8], key_pem: &[u8]) -> GitHttp {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem).collect::<Result<_, _>>().expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem).expect("key PEM");
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server certificate");
        GitHttp::serve(root, user, token, Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
    }

    fn serve(root: &std::path::Path, user: &str, token: &str, tls: Option<tokio_rustls::TlsAcceptor>) -> GitHttp {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Mutex::new(Shared {
            root: root.to_path_buf(),
            user: user.to_string(),
            token: token.to_string(),
            seen: Vec::new(),
        }));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let app = axum::Router::new()
            .fallback(handle)
            .layer(axum::extract::DefaultBodyLimit::disable())
            .with_state(shared.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let Some(acceptor) = tls else {
                    let _ = axum::serve(listener, app).await;
                    return;
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else { continue };
                    let (acceptor, app) = (acceptor.clone(), app.clone());
                    tokio::spawn(async move {
                        // A client that does not trust the certificate hangs up here.
                        let Ok(tls) = acceptor.accept(stream).await else { return };
                        let io = hyper_util::rt::TokioIo::new(tls);
                        let service = hyper_util::service::TowerToHyperService::new(app);
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                    });
                }
            });
        });
        GitHttp { addr, scheme, shared }
    }

    /// The URL of the repository `name` (e.g. `dns.git`).
    pub fn url(&self, name: &str) -> String {
        format!("{}://{}/{name}", self.scheme, self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().seen.clone()
    }
}

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let login = header("authorization").and_then(|a| {
        let encoded = a.strip_prefix("Basic ")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
        String::from_utf8(bytes).ok()
    });
    let (root, expected) = {
        let s = shared.lock().unwrap();
        (s.root.clone(), format!("{}:{}", s.user, s.token))
    };
    let record = |status: u16| {
        shared.lock().unwrap().seen.push(Seen {
            method: method.to_string(),
            path: uri.to_string(),
            login: login.clone(),
            status,
        });
    };
    if login.as_deref() != Some(expected.as_str()) {
        record(401);
        return (StatusCode::UNAUTHORIZED, [("www-authenticate", "Basic realm=\"git\"")], "Authentication required\n")
            .into_response();
    }
    let user = expected.split(':').next().unwrap_or_default().to_string();
    // The CGI contract of git-http-backend (see git-http-backend(1)).
    let mut cgi = std::process::Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("REQUEST_METHOD", method.as_str())
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", &user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (var, name) in [
        ("CONTENT_TYPE", "content-type"),
        ("HTTP_CONTENT_ENCODING", "content-encoding"),
        ("GIT_PROTOCOL", "git-protocol"),
    ] {
        if let Some(v) = header(name) {
            cgi.env(var, v);
        }
    }
    let Ok(mut child) = cgi.spawn() else {
        record(500);
        return (StatusCode::INTERNAL_SERVER_ERROR, "cannot run git http-backend").into_response();
    };
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().expect("git http-backend");
    let _ = writer.join();
    // CGI output: header lines, a blank line, the body.
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| (p, p + 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|p| (p, p + 2)));
    let Some((head_end, body_start)) = split else {
        record(500);
        return (StatusCode::INTERNAL_SERVER_ERROR, String::from_utf8_lossy(&out.stderr).into_owned()).into_response();
    };
    let mut status = 200u16;
    let mut response = Response::builder();
    for line in String::from_utf8_lossy(&raw[..head_end]).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = value.split_whitespace().next().and_then(|c| c.parse().ok()).unwrap_or(500);
        } else {
            response = response.header(name.trim(), value);
        }
    }
    record(status);
    response.status(status).body(axum::body::Body::from(raw[body_start..].to_vec())).expect("response")
}
