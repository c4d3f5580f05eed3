//! Kept-alive HTTP/1.1 connections to the upstreams, one idle list per serving thread and
//! target. hyper-util's pooled client did the same with a shared, locked map keyed by a
//! SipHash of the authority, and a spawned task per request to put the connection back:
//! ~10k instructions a request, over 10% of a proxied one. Here a connection is taken from
//! the thread's list by the target's number, and put back by the answer's body when it ends.
//! A connection whose answer is dropped unread is closed rather than reused.

use bytes::Bytes;
use http::{header, HeaderValue, Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::client::legacy::connect::HttpConnector;
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tower::ServiceExt;

pub type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
type Sender = SendRequest<Full<Bytes>>;

/// An idle connection is closed after this long unused (as hyper-util's pool did).
const IDLE_FOR: Duration = Duration::from_secs(90);
/// At most this many idle connections per thread and target.
const MAX_IDLE: usize = 512;

/// One upstream target's place in every thread's idle lists: a number no other target of
/// this process has, so proxies built side by side (tests) never share connections.
#[derive(Debug)]
pub struct Target {
    id: usize,
    /// `scheme://authority`, what the connector dials.
    origin: Uri,
    host: HeaderValue,
}

impl Target {
    pub fn new(origin: Uri, host: HeaderValue) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            origin,
            host,
        }
    }

    #[cfg(test)]
    pub fn host(&self) -> &HeaderValue {
        &self.host
    }
}

struct Idle {
    sender: Sender,
    since: Instant,
}

thread_local! {
    /// (target id, idle connections, oldest first). A connection is driven by a task on the
    /// thread that opened it, so each serving thread (`per_core`) keeps its own.
    static IDLE: RefCell<Vec<(usize, Vec<Idle>)>> = const { RefCell::new(Vec::new()) };
}

/// A connection in use; `give_back` returns it to this thread's idle list.
pub struct InUse {
    target: usize,
    sender: Sender,
}

impl InUse {
    /// Called when its answer has been read to the end.
    pub fn give_back(self) {
        if self.sender.is_closed() {
            return;
        }
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let i = match idle.iter().position(|(t, _)| *t == self.target) {
                Some(i) => i,
                None => {
                    idle.push((self.target, Vec::new()));
                    idle.len() - 1
                }
            };
            let list = &mut idle[i].1;
            if list.len() < MAX_IDLE {
                list.push(Idle {
                    sender: self.sender,
                    since: Instant::now(),
                });
            }
        });
    }
}

/// The most recently used idle connection of `target` that is still open and not idle for
/// too long; the stale ones met on the way are dropped (which closes them).
fn take_idle(target: usize) -> Option<Sender> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let list = &mut idle.iter_mut().find(|(t, _)| *t == target)?.1;
        let now = Instant::now();
        let fresh = list.partition_point(|i| now.duration_since(i.since) > IDLE_FOR);
        list.drain(..fresh);
        while let Some(i) = list.pop() {
            if !i.sender.is_closed() {
                return Some(i.sender);
            }
        }
        None
    })
}

/// Why no answer came back.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot connect: {0}")]
    Connect(Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

/// Sends `req` (origin-form URI; the Host header is added here) on an idle connection of
/// `target`, or a new one. A request that a reused connection could not take because it had
/// closed meanwhile (it was not written) goes again on a new connection, as hyper-util did.
pub async fn send(
    connector: &Connector,
    target: &Target,
    mut req: Request<Full<Bytes>>,
) -> Result<(http::Response<Incoming>, InUse), SendError> {
    req.headers_mut().insert(header::HOST, target.host.clone());
    if let Some(mut sender) = take_idle(target.id) {
        if sender.ready().await.is_ok() {
            match sender.try_send_request(req).await {
                Ok(res) => return Ok((res, in_use(target, sender))),
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(e.into_error().into()),
                },
            }
        }
    }
    // Boxed: dialing (DNS, TCP, TLS) is a large future and rarely runs; inline, it would size
    // every request's future, which is moved whole several times a request.
    let mut sender = Box::pin(connect(connector, target)).await?;
    let res = sender.send_request(req).await?;
    Ok((res, in_use(target, sender)))
}

fn in_use(target: &Target, sender: Sender) -> InUse {
    InUse {
        target: target.id,
        sender,
    }
}

async fn connect(connector: &Connector, target: &Target) -> Result<Sender, SendError> {
    let io = connector
        .clone()
        .oneshot(target.origin.clone())
        .await
        .map_err(SendError::Connect)?;
    let (sender, conn) = http1::Builder::new().handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    Ok(sender)
}
