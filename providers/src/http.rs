//! HTTP plumbing shared by the provider clients: timeouts, transport-failure classification,
//! URL building and retry with exponential backoff.

use backon::{ExponentialBuilder, Retryable};
use std::future::Future;
use std::time::Duration;

/// Timeouts and retry budget of a client.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Whole-request timeout (connect, send, and read the full response).
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first attempt, for failures that are safe to retry.
    pub max_retries: usize,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            max_retries: 3,
            min_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl HttpOptions {
    pub(crate) fn client(&self) -> Result<reqwest::Client, TransportError> {
        reqwest::Client::builder()
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            // Explicit, as on every latency path (reqwest's default too).
            .tcp_nodelay(true)
            .user_agent(concat!("poindexter-cloud/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportError::Broken(e.to_string()))
    }

    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(self.max_backoff)
            .with_max_times(self.max_retries)
            .with_jitter()
    }
}

/// A failure below HTTP: no status code was received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The provider may or may not have acted on the request.
    #[error("the request timed out")]
    Timeout,
    /// The request never reached the provider.
    #[error("could not connect: {0}")]
    Connect(String),
    /// The connection broke (reset, truncated response); the provider may have acted.
    #[error("the connection failed: {0}")]
    Broken(String),
}

impl TransportError {
    pub(crate) fn from_reqwest(e: &reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Connect(e.without_url_string())
        } else {
            Self::Broken(e.without_url_string())
        }
    }

    /// True when the provider cannot have seen the request, so even a call that is not
    /// idempotent may be repeated.
    pub fn request_not_delivered(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

/// `is_retryable` and `not_delivered` for a provider's error enum, whose `Transport`,
/// `RateLimited(_)` and `Api { status, .. }` variants decide them: one policy for every provider.
macro_rules! classify_failures {
    ($error:ty) => {
        impl $error {
            /// Whether the same call may succeed later (transient transport failure, rate
            /// limit, 408, 5xx).
            pub fn is_retryable(&self) -> bool {
                match self {
                    Self::Transport(_) | Self::RateLimited(_) => true,
                    Self::Api { status, .. } => *status >= 500 || *status == 408,
                    _ => false,
                }
            }

            /// A retryable failure after which the provider provably did not act: the request
            /// never reached it, or it said so (429, 503).
            pub(crate) fn not_delivered(&self) -> bool {
                match self {
                    Self::Transport(t) => t.request_not_delivered(),
                    Self::RateLimited(_) => true,
                    Self::Api { status, .. } => *status == 503,
                    _ => false,
                }
            }
        }
    };
}
pub(crate) use classify_failures;

trait WithoutUrl {
    fn without_url_string(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    /// Error text without the URL (which can carry phone numbers or addresses).
    fn without_url_string(&self) -> String {
        let mut text = self.to_string();
        if let Some(url) = self.url() {
            text = text.replace(url.as_str(), "<url>");
        }
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

/// Whether repeating a call after an ambiguous failure (timeout, broken connection, 5xx) could
/// make the provider act twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// Reads, updates to a fixed state, deletes, creations under a deterministic name.
    Safe,
    /// Sends and orders: repeat only when the provider provably did not act.
    OnlyIfNotDelivered,
}

/// The status and body of a provider response.
pub(crate) struct RawResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

pub(crate) async fn execute(req: reqwest::RequestBuilder) -> Result<RawResponse, TransportError> {
    let resp = req
        .send()
        .await
        .map_err(|e| TransportError::from_reqwest(&e))?;
    let status = resp.status().as_u16();
    let body = resp
        .bytes()
        .await
        .map_err(|e| TransportError::from_reqwest(&e))?;
    Ok(RawResponse {
        status,
        body: body.to_vec(),
    })
}

/// Runs `op`, retrying with exponential backoff while `may_retry` says so.
pub(crate) async fn with_retries<T, E, F, Fut>(
    opts: &HttpOptions,
    what: &'static str,
    op: F,
    may_retry: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    op.retry(opts.backoff())
        .sleep(tokio::time::sleep)
        .when(may_retry)
        .notify(|e: &E, after: Duration| {
            tracing::warn!(call = what, error = %e, retry_in_ms = after.as_millis() as u64, "provider call failed; retrying");
        })
        .await
}

/// `base` followed by `segments`, each percent-encoded as one path segment.
pub(crate) fn endpoint(base: &str, segments: &[&str]) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(base).map_err(|e| format!("bad base URL: {e}"))?;
    url.path_segments_mut()
        .map_err(|()| "base URL cannot have a path".to_owned())?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}
