//! Calls to the AI providers over kept-alive connections (`conn_pool`). Before the first byte
//! of an answer, a connect error, 429 or 5xx moves on to the next configured target after a
//! short jittered backoff, a bounded number of times; once an answer is accepted
//! there is no retry.

use crate::catalog::Provider;
use crate::conn_pool::{self, Connector, InUse};
use crate::errors::ProxyError;
use crate::options::{Target, UpstreamTimeouts};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use http::{header, HeaderValue, Uri};
use http_body_util::{BodyDataStream, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};

/// An upstream's answer, its body still to be read or streamed, and the connection it came
/// on, which goes back to the pool when the body has been read to the end.
pub struct Answer {
    res: http::Response<Incoming>,
    conn: InUse,
}

impl Answer {
    pub fn status(&self) -> http::StatusCode {
        self.res.status()
    }

    pub fn headers(&self) -> &http::HeaderMap {
        self.res.headers()
    }
}

/// Why an answer's body stopped short.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Broken(hyper::Error),
    #[error("the upstream sent nothing for {} s", .0.as_secs())]
    Idle(Duration),
}

impl BodyError {
    pub fn into_proxy_error(self) -> ProxyError {
        match self {
            Self::Broken(_) => ProxyError::UpstreamUnavailable,
            Self::Idle(_) => ProxyError::UpstreamTimeout,
        }
    }
}

/// An answer's body as a stream of chunks, as they arrive, ended with `BodyError::Idle` when
/// the upstream goes quiet for longer than the idle timeout.
pub struct Chunks {
    body: BodyDataStream<Incoming>,
    /// Given back to the pool when the body ends; dropped (closed) if it breaks off.
    conn: Option<InUse>,
    idle: Duration,
    /// When the last chunk arrived (or the body was opened).
    last: Instant,
    /// Armed on the first wait and moved only when it fires early, so a busy stream costs an
    /// `Instant::now()` per chunk rather than a timer update.
    timer: Option<Pin<Box<Sleep>>>,
    ended: bool,
}

impl Stream for Chunks {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.body).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.last = Instant::now();
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.ended = true;
                Poll::Ready(Some(Err(BodyError::Broken(e))))
            }
            Poll::Ready(None) => {
                self.ended = true;
                if let Some(conn) = self.conn.take() {
                    conn.give_back();
                }
                Poll::Ready(None)
            }
            Poll::Pending => {
                let deadline = self.last + self.idle;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                loop {
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    if timer.deadline() >= deadline {
                        break;
                    }
                    // Fired for an earlier quiet spell that chunks have since ended.
                    timer.as_mut().reset(deadline);
                }
                self.ended = true;
                let idle = self.idle;
                Poll::Ready(Some(Err(BodyError::Idle(idle))))
            }
        }
    }
}

pub struct Upstreams {
    openai: Vec<Endpoints>,
    anthropic: Vec<Endpoints>,
    max_attempts: usize,
    timeouts: UpstreamTimeouts,
    connector: Connector,
}

/// The API paths the proxy calls, below a provider's base URL.
#[derive(Clone, Copy)]
pub enum Path {
    ChatCompletions,
    Embeddings,
    Messages,
}

/// A target with its paths and credential header built once, not on every request.
struct Endpoints {
    /// `Authorization: Bearer …` (OpenAI) or `x-api-key` (Anthropic), marked sensitive.
    credential: (header::HeaderName, HeaderValue),
    /// Where its connections are dialled and kept.
    pool: conn_pool::Target,
    /// Origin-form (path only), as a request on a connection to the target is written.
    chat: Uri,
    embeddings: Uri,
    messages: Uri,
}

impl Endpoints {
    fn new(t: &Target, provider: Provider) -> Result<Self, url_error::Invalid> {
        let invalid = || url_error::Invalid(t.base_url.clone());
        let base: Uri = t
            .base_url
            .trim_end_matches('/')
            .parse()
            .map_err(|_| invalid())?;
        let (Some(scheme @ ("http" | "https")), Some(authority)) =
            (base.scheme_str(), base.authority())
        else {
            return Err(invalid());
        };
        if base.query().is_some() {
            return Err(invalid());
        }
        let origin: Uri = format!("{scheme}://{authority}")
            .parse()
            .map_err(|_| invalid())?;
        // host[:port]: credentials written into a base URL (`user:pass@`) are not sent.
        let host = authority.as_str().rsplit('@').next().unwrap_or_default();
        let host = HeaderValue::from_str(host).map_err(|_| invalid())?;
        let base_path = base.path().trim_end_matches('/');
        let uri = |path: &str| -> Result<Uri, url_error::Invalid> {
            format!("{base_path}{path}").parse().map_err(|_| invalid())
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
            pool: conn_pool::Target::new(origin, host),
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
    /// No headers within the headers timeout.
    Timeout,
}

/// Headers the caller sent that Anthropic needs to see.
#[derive(Default, Clone)]
pub struct AnthropicHeaders {
    pub version: Option<HeaderValue>,
    pub beta: Option<HeaderValue>,
}

pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Dials upstreams: TCP with no delay and a 5 s connect timeout, then TLS by rustls for https
/// (HTTP/1.1). No redirects, proxy lookup or URL re-parsing per request: the least work per
/// request.
fn new_connector(tls: ClientConfig) -> Connector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http)
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

impl Upstreams {
    pub fn new(
        openai: Vec<Target>,
        anthropic: Vec<Target>,
        max_attempts: usize,
        timeouts: UpstreamTimeouts,
        ca_file: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        // Built now, so a TLS set-up problem (an unreadable CA file, say) stops the start-up
        // rather than failing every request.
        let connector = new_connector(tls_config(ca_file)?);
        let parse = |ts: Vec<Target>, provider| {
            ts.iter()
                .map(|t| Endpoints::new(t, provider))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            openai: parse(openai, Provider::OpenAi)?,
            anthropic: parse(anthropic, Provider::Anthropic)?,
            max_attempts: max_attempts.max(1),
            timeouts,
            connector,
        })
    }

    /// The answer's body, chunk by chunk as it arrives.
    pub fn chunks(&self, answer: Answer) -> Chunks {
        Chunks {
            body: BodyDataStream::new(answer.res.into_body()),
            conn: Some(answer.conn),
            idle: self.timeouts.idle,
            last: Instant::now(),
            timer: None,
            ended: false,
        }
    }

    /// Reads a whole answer's body.
    pub async fn read_body(&self, answer: Answer) -> Result<Bytes, BodyError> {
        let mut chunks = self.chunks(answer);
        let Some(first) = chunks.next().await.transpose()? else {
            return Ok(Bytes::new());
        };
        let Some(second) = chunks.next().await.transpose()? else {
            // Most answers arrive in one piece: no copy.
            return Ok(first);
        };
        let mut all = BytesMut::with_capacity(first.len() + second.len());
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(chunk) = chunks.next().await.transpose()? {
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
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
        // A plain loop rather than backon's `Retry`: that future held the attempt's (large)
        // future and was moved whole at each poll, ~0.6k instructions of memcpy a request.
        let mut backoff = FIRST_BACKOFF;
        let mut i = 0;
        loop {
            let failure = match self
                .attempt(provider, targets, i, path, &body, anthropic)
                .await
            {
                Ok(res) => return Ok(res),
                Err(f) => f,
            };
            i += 1;
            if i >= attempts {
                return match failure {
                    Failure::Status(res) => Ok(res),
                    Failure::Connect => Err(ProxyError::UpstreamUnavailable),
                    Failure::Timeout => Err(ProxyError::UpstreamTimeout),
                };
            }
            tokio::time::sleep(jittered(backoff)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Attempt `i` (0-based), on target `i` modulo their number.
    async fn attempt(
        &self,
        provider: Provider,
        targets: &[Endpoints],
        i: usize,
        path: Path,
        body: &Bytes,
        anthropic: &AnthropicHeaders,
    ) -> Result<Answer, Failure> {
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
        let answer = tokio::time::timeout(
            self.timeouts.headers,
            conn_pool::send(&self.connector, &target.pool, req),
        )
        .await;
        let Ok(answer) = answer else {
            metrics::counter!("poindexter_proxy_upstream_failovers_total", "provider" => provider.as_str(), "reason" => "timeout").increment(1);
            tracing::warn!(
                provider = provider.as_str(),
                target = i % targets.len(),
                timeout_s = self.timeouts.headers.as_secs_f64(),
                "upstream did not answer in time; trying the next target"
            );
            return Err(Failure::Timeout);
        };
        match answer.map(|(res, conn)| Answer { res, conn }) {
            Ok(res) if res.status().as_u16() == 429 || res.status().is_server_error() => {
                metrics::counter!("poindexter_proxy_upstream_failovers_total", "provider" => provider.as_str(), "reason" => "status").increment(1);
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
                metrics::counter!("poindexter_proxy_upstream_failovers_total", "provider" => provider.as_str(), "reason" => "connect").increment(1);
                tracing::warn!(provider = provider.as_str(), error = %e, target = i % targets.len(), "upstream unreachable; trying the next target");
                Err(Failure::Connect)
            }
        }
    }
}

/// The wait before the second attempt; it doubles for each further one, up to the maximum.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_millis(250);

/// `d` plus a random part of up to `d` again, so that proxies retrying together spread out.
fn jittered(d: Duration) -> Duration {
    d + d.mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(base_url: &str) -> Result<Endpoints, url_error::Invalid> {
        let target = Target {
            base_url: base_url.into(),
            api_key: "sk-test".into(),
        };
        Endpoints::new(&target, Provider::OpenAi)
    }

    /// Requests are written in origin form, with the base URL's path and a Host header that
    /// names host and port only.
    #[test]
    fn splits_a_base_url_into_where_to_dial_and_what_to_write() {
        let e = endpoints("https://user:secret@api.example.com:8443/openai/v1/").unwrap();
        assert_eq!(e.chat, "/openai/v1/chat/completions");
        assert_eq!(e.embeddings, "/openai/v1/embeddings");
        assert_eq!(e.pool.host(), "api.example.com:8443");
        let e = endpoints("http://127.0.0.1:9000").unwrap();
        assert_eq!(e.chat, "/chat/completions");
        assert_eq!(e.pool.host(), "127.0.0.1:9000");
        for bad in [
            "api.example.com/v1",
            "ftp://api.example.com/v1",
            "https://api.example.com/v1?x=1",
        ] {
            assert!(endpoints(bad).is_err(), "{bad}");
        }
    }
}
