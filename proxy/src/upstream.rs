//! Calls to the AI providers over pooled HTTP clients. Before the first byte of an answer,
//! a connect error, 429 or 5xx moves on to the next configured target after a short jittered
//! backoff (backon), a bounded number of times; once an answer is accepted there is no retry.

use crate::catalog::Provider;
use crate::errors::ProxyError;
use crate::options::Target;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use http::HeaderValue;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

pub struct Upstreams {
    openai: Vec<Endpoints>,
    anthropic: Vec<Endpoints>,
    max_attempts: usize,
}

/// The API paths the proxy calls, below a provider's base URL.
#[derive(Clone, Copy)]
pub enum Path {
    ChatCompletions,
    Embeddings,
    Messages,
}

/// A target with its URLs parsed once, not on every request.
struct Endpoints {
    api_key: String,
    chat: reqwest::Url,
    embeddings: reqwest::Url,
    messages: reqwest::Url,
}

impl Endpoints {
    fn new(t: &Target) -> Result<Self, url_error::Invalid> {
        let url = |path: &str| {
            reqwest::Url::parse(&format!("{}{path}", t.base_url))
                .map_err(|_| url_error::Invalid(t.base_url.clone()))
        };
        Ok(Self {
            api_key: t.api_key.clone(),
            chat: url("/chat/completions")?,
            embeddings: url("/embeddings")?,
            messages: url("/v1/messages")?,
        })
    }

    fn url(&self, path: Path) -> reqwest::Url {
        match path {
            Path::ChatCompletions => self.chat.clone(),
            Path::Embeddings => self.embeddings.clone(),
            Path::Messages => self.messages.clone(),
        }
    }
}

pub mod url_error {
    #[derive(Debug, thiserror::Error)]
    #[error("upstream base URL `{0}` is not a valid URL")]
    pub struct Invalid(pub String);
}

/// Why an attempt did not produce an answer worth keeping.
enum Failure {
    /// 429 or 5xx: kept, so the last one can be shown to the caller.
    Status(reqwest::Response),
    Connect,
}

/// Headers the caller sent that Anthropic needs to see.
#[derive(Default, Clone)]
pub struct AnthropicHeaders {
    pub version: Option<HeaderValue>,
    pub beta: Option<HeaderValue>,
}

pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// No proxy lookup, no redirects, HTTP/1.1 keep-alive: the least work per request.
fn new_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .http1_only()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(512)
        .tcp_nodelay(true)
        .build()
}

thread_local! {
    /// One client, so one connection pool, per thread: a pooled connection is driven by a
    /// task on the thread that made it, so each serving thread (server::per_core) reuses its
    /// own connections and never hands a request to another thread.
    static CLIENT: reqwest::Client = new_client().unwrap_or_default();
}

fn client() -> reqwest::Client {
    CLIENT.with(reqwest::Client::clone)
}

impl Upstreams {
    pub fn new(
        openai: Vec<Target>,
        anthropic: Vec<Target>,
        max_attempts: usize,
    ) -> anyhow::Result<Self> {
        // Fail at start-up, not on the first request, if the client cannot be built.
        new_client()?;
        let parse = |ts: Vec<Target>| ts.iter().map(Endpoints::new).collect::<Result<Vec<_>, _>>();
        Ok(Self {
            openai: parse(openai)?,
            anthropic: parse(anthropic)?,
            max_attempts: max_attempts.max(1),
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
    ) -> Result<reqwest::Response, ProxyError> {
        let targets = self.targets(provider);
        if targets.is_empty() {
            return Err(ProxyError::NotConfigured);
        }
        let attempts = self.max_attempts.max(targets.len());
        let next = AtomicUsize::new(0);
        let attempt = || async {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let target = &targets[i % targets.len()];
            let mut req = client()
                .post(target.url(path))
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            req = match provider {
                Provider::OpenAi => req.bearer_auth(&target.api_key),
                Provider::Anthropic => req.header("x-api-key", &target.api_key).header(
                    "anthropic-version",
                    anthropic
                        .version
                        .clone()
                        .unwrap_or(HeaderValue::from_static(ANTHROPIC_VERSION)),
                ),
            };
            if let (Provider::Anthropic, Some(beta)) = (provider, &anthropic.beta) {
                req = req.header("anthropic-beta", beta.clone());
            }
            match req.send().await {
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
