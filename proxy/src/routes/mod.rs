//! The AI routes and what they share: admission (key, plan, spending cap, rate limit), the
//! per-request context, and the headers every answer carries (`x-request-id`,
//! `x-poindexter-tokens-remaining`).

pub mod chat;
pub mod direct;
pub mod embeddings;
pub mod messages;
pub mod models;
pub mod unknown;

use crate::catalog::{Prices, Provider};
use crate::errors::{Dialect, ProxyError};
use crate::keys::{Access, KeyStore, UserState};
use crate::ratelimit::Limiter;
use crate::request_meter::RequestMeter;
use crate::upstream::{Answer, AnthropicHeaders, Path, Upstreams};
use crate::usage::Meter;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use chrono::{DateTime, Utc};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// Header names built once: inserting or looking up by `&str` parses the name every time, and
/// for a name that is not a standard one allocates a copy of it.
static TOKENS_REMAINING: HeaderName = HeaderName::from_static("x-poindexter-tokens-remaining");
static REQUEST_ID: HeaderName = HeaderName::from_static(server::request_id::HEADER);
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

pub struct Shared {
    pub keys: Arc<KeyStore>,
    /// For keys the table does not know yet (`KeyStore::find_or_load`).
    pub pool: sqlx::PgPool,
    pub limiter: Limiter,
    pub upstreams: Upstreams,
    pub meter: Meter,
}

/// Identity and timing of one request. The id is always minted here (UUIDv7), so a usage
/// event's key can never be chosen, or repeated, by a caller.
#[derive(Clone)]
pub struct Ctx {
    pub request_id: Arc<str>,
    pub started: Instant,
    pub created_at: DateTime<Utc>,
}

impl Ctx {
    fn new() -> Self {
        Self {
            request_id: {
                // Written straight into a buffer: `to_string` goes through the formatter.
                let mut id = [0; uuid::fmt::Hyphenated::LENGTH];
                Arc::from(&*Uuid::now_v7().hyphenated().encode_lower(&mut id))
            },
            started: Instant::now(),
            created_at: Utc::now(),
        }
    }

    fn decorate(&self, mut res: Response, user: Option<&UserState>) -> Response {
        let h = res.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            h.insert(REQUEST_ID.clone(), v);
        }
        if let Some(user) = user {
            h.insert(
                TOKENS_REMAINING.clone(),
                HeaderValue::from(user.tokens_remaining()),
            );
        }
        res
    }
}

pub struct Caller {
    pub key_id: Uuid,
    pub user: Arc<UserState>,
}

impl Caller {
    pub fn request_meter(
        &self,
        shared: &Shared,
        ctx: &Ctx,
        model: &str,
        provider: Provider,
        prices: Prices,
        request_bytes: usize,
    ) -> RequestMeter {
        // Only once nothing about the request itself can fail any more: a RequestMeter always
        // records an event, and a request refused as malformed is not metered.
        RequestMeter {
            meter: shared.meter.clone(),
            user: self.user.clone(),
            key_id: self.key_id,
            request_id: ctx.request_id.clone(),
            model: model.to_owned(),
            provider,
            prices,
            started: ctx.started,
            created_at: ctx.created_at,
            request_bytes,
            done: false,
        }
    }
}

/// The key the caller presented, as the OpenAI SDK (`Authorization: Bearer`) or the
/// Anthropic SDK (`x-api-key`) sends it.
/// If both are sent, the one that looks like a Poindexter key or access token wins.
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    let x_api_key = headers
        .get(&X_API_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let ours = |k: &&str| {
        k.starts_with(domain::API_KEY_PREFIX) || k.starts_with(domain::ACCESS_TOKEN_PREFIX)
    };
    x_api_key
        .filter(ours)
        .or(bearer.filter(ours))
        .or(x_api_key)
        .or(bearer)
}

/// Key → user → access → spending cap → rate limit. On refusal, also the user if known.
async fn admit(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<Caller, (ProxyError, Option<Arc<UserState>>)> {
    let presented = presented_key(headers).ok_or((ProxyError::MissingKey, None))?;
    let entry = shared
        .keys
        .find_or_load(&shared.pool, presented)
        .await
        .ok_or((ProxyError::InvalidKey, None))?;
    let user = entry.user;
    match user.access() {
        Access::Active {
            cap_microdollars: Some(cap),
            ..
        } if user.spent() >= cap => return Err((ProxyError::SpendingCap, Some(user))),
        Access::Active { .. } => {}
        Access::NoSubscription => return Err((ProxyError::NoSubscription, Some(user))),
        Access::Suspended => return Err((ProxyError::Suspended, Some(user))),
    }
    if let Err(wait) = shared.limiter.check(entry.key_id).await {
        metrics::counter!("poindexter_proxy_rate_limited_total").increment(1);
        let retry_after_s = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return Err((
            ProxyError::RateLimited {
                retry_after_s: retry_after_s.max(1),
            },
            Some(user),
        ));
    }
    Ok(Caller {
        key_id: entry.key_id,
        user,
    })
}

/// Sends the request upstream (with failover). When no answer comes, the request is metered
/// as failed, with the status the caller gets, before the error goes back.
pub async fn send(
    shared: &Shared,
    metering: RequestMeter,
    path: Path,
    body: Bytes,
    anthropic: &AnthropicHeaders,
) -> Result<(Answer, RequestMeter), ProxyError> {
    match shared
        .upstreams
        .send(metering.provider, path, body, anthropic)
        .await
    {
        Ok(res) => Ok((res, metering)),
        Err(e) => {
            metering.fail(&e);
            Err(e)
        }
    }
}

/// Reads a whole answer. If its body breaks off or goes quiet, the request is metered as
/// failed, with the status the caller gets, before the error goes back.
pub async fn read_answer(
    shared: &Shared,
    res: Answer,
    metering: RequestMeter,
) -> Result<(Bytes, RequestMeter), ProxyError> {
    match shared.upstreams.read_body(res).await {
        Ok(bytes) => Ok((bytes, metering)),
        Err(e) => {
            tracing::warn!(error = %e, request_id = %metering.request_id, "upstream answer broke off");
            let e = e.into_proxy_error();
            metering.fail(&e);
            Err(e)
        }
    }
}

/// Admits the caller, then runs `work` in its own task: an answer that is under way is
/// finished and metered even if the client hangs up before its headers arrive.
pub async fn serve<F, Fut>(
    shared: Arc<Shared>,
    dialect: Dialect,
    headers: HeaderMap,
    body: Result<Bytes, ProxyError>,
    work: F,
) -> Response
where
    F: FnOnce(Arc<Shared>, Ctx, Caller, HeaderMap, Bytes) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Response, ProxyError>> + Send + 'static,
{
    let ctx = Ctx::new();
    let caller = match admit(&shared, &headers).await {
        Ok(c) => c,
        Err((e, user)) => {
            count(dialect, e.status().as_u16());
            return ctx.decorate(e.into_response(dialect), user.as_deref());
        }
    };
    let user = caller.user.clone();
    // Read before admission (by axum or `direct`); refused after it, so that a bad key still
    // gets its 401.
    let body = match body {
        Ok(body) => body,
        Err(e) => {
            count(dialect, e.status().as_u16());
            return ctx.decorate(e.into_response(dialect), Some(&user));
        }
    };
    // Boxed: a task stores its future inline and tokio moves that whole store on spawn and
    // again on completion; a request's future is kilobytes, a box is a pointer.
    let res = tokio::spawn(Box::pin(work(shared, ctx.clone(), caller, headers, body))).await;
    let res = match res {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(dialect),
        Err(e) => {
            tracing::error!(error = %e, "request task failed");
            ProxyError::UpstreamUnavailable.into_response(dialect)
        }
    };
    count(dialect, res.status().as_u16());
    crate::hot_metrics::answered_in(dialect, res.status().as_u16(), ctx.started.elapsed());
    ctx.decorate(res, Some(&user))
}

/// axum's refusal of a request body, as the caller's error: too large, or not read whole.
pub fn rejected(rejection: BytesRejection) -> ProxyError {
    if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ProxyError::TooLarge
    } else {
        ProxyError::BadRequest(rejection.body_text())
    }
}

fn count(dialect: Dialect, status: u16) {
    crate::hot_metrics::request_answered(dialect, status);
}

/// The headers of an upstream answer worth passing on.
pub struct Passed {
    pub status: u16,
    content_type: Option<HeaderValue>,
    retry_after: Option<HeaderValue>,
}

impl Passed {
    pub fn of(res: &crate::upstream::Answer) -> Self {
        Self {
            status: res.status().as_u16(),
            content_type: res.headers().get(header::CONTENT_TYPE).cloned(),
            retry_after: res.headers().get(header::RETRY_AFTER).cloned(),
        }
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A finished upstream answer passed on with its status, content type and Retry-After.
    pub fn respond(self, body: Bytes) -> Response {
        let mut res = Response::new(Body::from(body));
        *res.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            self.content_type
                .unwrap_or(HeaderValue::from_static("application/json")),
        );
        if let Some(r) = self.retry_after {
            h.insert(header::RETRY_AFTER, r);
        }
        res
    }
}

pub fn event_stream(body: Body) -> Response {
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// Reads `model` (and `stream`) without copying the rest of the body.
#[derive(serde::Deserialize)]
pub struct Head {
    pub model: String,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Given<StreamOptions>,
}

/// A member that may be absent, `null` or set (serde's `Option` reads the first two alike):
/// a request that leaves `stream_options` out can have it added without a re-parse.
#[derive(Default)]
pub enum Given<T> {
    #[default]
    Absent,
    Null,
    Set(T),
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Given<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(d)? {
            Some(v) => Self::Set(v),
            None => Self::Null,
        })
    }
}

#[derive(serde::Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

pub fn head(body: &[u8]) -> Result<Head, ProxyError> {
    let head: Head = serde_json::from_slice(body).map_err(|e| {
        ProxyError::BadRequest(format!(
            "The request body is not valid JSON with a string `model`: {e}"
        ))
    })?;
    // The name is metered and stored as given (a catalog entry matches by prefix), so it
    // must be something a model is called, not a megabyte or a control character.
    let name = head.model.as_bytes();
    if name.is_empty() || name.len() > MODEL_NAME_MAX || !name.iter().all(u8::is_ascii_graphic) {
        return Err(ProxyError::BadRequest(format!(
            "`model` must be a model name: 1 to {MODEL_NAME_MAX} printable ASCII characters, \
             no spaces. GET /v1/models lists the models."
        )));
    }
    Ok(head)
}

const MODEL_NAME_MAX: usize = 200;
