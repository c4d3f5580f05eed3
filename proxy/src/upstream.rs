//! Calls to the AI providers over pooled HTTP clients. Before the first byte of an answer,
//! a connect error, 429 or 5xx moves on to the next configured target after a short jittered
//! backoff (backon), a bounded number of times; once an answer is accepted there is no retry.

use crate::catalog::Provider;
use crate::errors::ProxyError;
use crate::options::Target;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use http::{header, HeaderValue, Uri};
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// An upstream's answer, its body still to be read or streamed.
pub type Answer = http::Response<Incoming>;

/// An answer's body as a stream of chunks, as they arrive.
pub type Chunks = BodyDataStream<Incoming>;

pub fn chunks(answer: Answer) -> Chunks {
    BodyDataStream::new(answer.into_body())
}

/// Reads a whole answer's body.
pub async fn read_body(answer: Answer) -> Result<Bytes, ProxyError> {
    answer
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .map_err(|_| ProxyError::UpstreamUnavailable)
}

pub struct Upstreams {
    openai: Vec<Endpoints>,
    anthropic: Vec<Endpoints>,
    max_attempts: usize,
    tls: Arc<ClientConfig>,
}

/// The API paths the proxy calls, below a provider's base URL.
#[derive(Clone, Copy)]
pub enum Path {
    ChatCompletions,
    Embeddings,
    Messages,
}

/// A target with its URIs and credential header built once, not on every request.
struct Endpoints {
    /// `Authorization: Bearer …` (OpenAI) or `x-api-key` (Anthropic), marked sensitive.
    credential: (header::HeaderName, HeaderValue),
    chat: Uri,
    embeddings: Uri,
    messages: Uri,
}

impl Endpoints {
    fn new(t: &Target, provider: Provider) -> Result<Self, url_error::Invalid> {
        let invalid = || url_error::Invalid(t.base_url.clone());
        let uri = |path: &str| {
            let uri: Uri = format!("{}{path}", t.base_url.trim_end_matches('/'))
                .parse()
                .map_err(|_| invalid())?;
            match (uri.scheme_str(), uri.host()) {
                (Some("http" | "https"), Some(_)) => Ok(uri),
                _ => Err(invalid()),
            }
        };
        let (name, value) = match provider {
            Provider::OpenAi => (header::AUTHORIZATION, format!("Bearer {}", t.api_key)),
            Provider::Anthropic => (
                header::HeaderName::from_static("x-api-key"),
                t.api_key.clone(),
            ),
        };
        let mut value = HeaderValue::from_str(&value).map_err(|_| invalid())?;
        value.set_sensitive(true);
        Ok(Self {
            credential: (name, value),
            chat: uri("/chat/completions")?,
            embeddings: uri("/embeddings")?,
            messages: uri("/v1/messages")?,
        })
    }

    fn uri(&self, path: Path) -> Uri {
        match path {
            Path::ChatCompletions => self.chat.clone(),
            Path::Embeddings => self.embeddings.clone(),
            Path::Messages => self.messages.clone(),
        }
    }
}

pub mod url_error {
    #[derive(Debug, thiserror::Error)]
    #[error("upstream base URL `{0}` is not a valid http(s) URL, or its API key is not a valid header value")]
    pub struct Invalid(pub String);
}

/// Why an attempt did not produce an answer worth keeping.
enum Failure {
    /// 429 or 5xx: kept, so the last one can be shown to the caller.
    Status(Answer),
    Connect,
}

/// Headers the caller sent that Anthropic needs to see.
#[derive(Default, Clone)]
pub struct AnthropicHeaders {
    pub version: Option<HeaderValue>,
    pub beta: Option<HeaderValue>,
}

pub const ANTHROPIC_VERSION: &str = "2023-06-01";

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// hyper's pooled client (HTTP/1.1 keep-alive, TLS by rustls) with no redirects, proxy
/// lookup or URL re-parsing per request: the least work per request.
fn new_client(tls: &ClientConfig) -> HttpsClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(512)
        .build(https)
}

/// TLS for upstreams: the Mozilla roots, plus the PEM certificates in `ca_file`.
fn tls_config(ca_file: Option<&std::path::Path>) -> anyhow::Result<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| anyhow::anyhow!("cannot read PROXY_UPSTREAM_CA_FILE {shown}: {e}"))?;
        if certs.is_empty() {
            anyhow::bail!("PROXY_UPSTREAM_CA_FILE {shown} holds no PEM certificate");
        }
        for cert in certs {
            roots.add(cert).map_err(|e| {
                anyhow::anyhow!("PROXY_UPSTREAM_CA_FILE {shown}: unusable certificate: {e}")
            })?;
        }
    }
    Ok(
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

thread_local! {
    /// One client, so one connection pool, per thread (and TLS setting, of which a process
    /// has one unless tests start several proxies): a pooled connection is driven by a task
    /// on the thread that made it, so each serving thread (server::per_core) reuses its own
    /// connections and never hands a request to another thread.
    static CLIENTS: RefCell<Vec<(Arc<ClientConfig>, HttpsClient)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this thread's client for `tls`.
fn with_client<R>(tls: &Arc<ClientConfig>, f: impl FnOnce(&HttpsClient) -> R) -> R {
    CLIENTS.with(|clients| {
        let mut clients = clients.borrow_mut();
        let i = match clients.iter().position(|(t, _)| Arc::ptr_eq(t, tls)) {
            Some(i) => i,
            None => {
                clients.push((tls.clone(), new_client(tls)));
                clients.len() - 1
            }
        };
        f(&clients[i].1)
    })
}

impl Upstreams {
    pub fn new(
        openai: Vec<Target>,
        anthropic: Vec<Target>,
        max_attempts: usize,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        // Built now, so a TLS set-up problem (an unreadable CA file, say) stops the start-up
        // rather than failing every request.
        let tls = Arc::new(tls_config(ca_file)?);
        let parse = |ts: Vec<Target>, provider| {
            ts.iter()
                .map(|t| Endpoints::new(t, provider))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            openai: parse(openai, Provider::OpenAi)?,
            anthropic: parse(anthropic, Provider::Anthropic)?,
            max_attempts: max_attempts.max(1),
            tls,
        })
    }

    fn targets(&self, provider: Provider) -> &[Endpoints] {
        match provider {
            Provider::OpenAi => &self.openai,
            Provider::Anthropic => &self.anthropic,
        }
    }

    /// Sends `body` to `path` (below the provider's base URL). Returns the accepted response,
    /// or the last 429/5xx when every attempt failed that way.
    pub async fn send(
        &self,
        provider: Provider,
        path: Path,
        body: Bytes,
        anthropic: &AnthropicHeaders,
    ) -> Result<Answer, ProxyError> {
        let targets = self.targets(provider);
        if targets.is_empty() {
            return Err(ProxyError::NotConfigured);
        }
        let attempts = self.max_attempts.max(targets.len());
        let next = AtomicUsize::new(0);
        let attempt = || async {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let target = &targets[i % targets.len()];
            let mut req = http::Request::post(target.uri(path))
                .header(header::CONTENT_TYPE, "application/json")
                .header(&target.credential.0, &target.credential.1);
            if provider == Provider::Anthropic {
                req = req.header(
                    "anthropic-version",
                    anthropic
                        .version
                        .clone()
                        .unwrap_or(HeaderValue::from_static(ANTHROPIC_VERSION)),
                );
                if let Some(beta) = &anthropic.beta {
                    req = req.header("anthropic-beta", beta.clone());
                }
            }
            // Every part was validated when the target was configured or arrived as a header.
            let Ok(req) = req.body(Full::new(body.clone())) else {
                return Err(Failure::Connect);
            };
            // The future owns what it needs: the thread's client is borrowed, not cloned.
            match with_client(&self.tls, |c| c.request(req)).await {
                Ok(res) if res.status().as_u16() == 429 || res.status().is_server_error() => {
                    metrics::counter!("proxy_upstream_failovers_total", "provider" => provider.as_str(), "reason" => "status").increment(1);
                    tracing::warn!(
                        provider = provider.as_str(),
                        status = res.status().as_u16(),
                        target = i % targets.len(),
                        "upstream refused; trying the next target"
                    );
                    Err(Failure::Status(res))
                }
                Ok(res) => Ok(res),
                Err(e) => {
                    metrics::counter!("proxy_upstream_failovers_total", "provider" => provider.as_str(), "reason" => "connect").increment(1);
                    tracing::warn!(provider = provider.as_str(), error = %e, target = i % targets.len(), "upstream unreachable; trying the next target");
                    Err(Failure::Connect)
                }
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(5))
            .with_max_delay(Duration::from_millis(250))
            .with_max_times(attempts - 1)
            .with_jitter();
        match attempt.retry(backoff).await {
            Ok(res) => Ok(res),
            Err(Failure::Status(res)) => Ok(res),
            Err(Failure::Connect) => Err(ProxyError::UpstreamUnavailable),
        }
    }
}
