//! Which Restate node a call goes to. Calls take the configured nodes in turn, passing over a
//! node that recently refused a connection or did not answer; a call a node could not answer
//! goes on to the next node when sending it again cannot run the work twice (`resend_is_safe`).
//! With one node configured this is a plain call to it.

use reqwest::StatusCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a node that failed is tried only after the others.
const SUSPECT_FOR: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct RestateNodes {
    inner: Arc<Inner>,
}

struct Inner {
    urls: Vec<String>,
    next: AtomicUsize,
    suspect_until: Mutex<Vec<Option<Instant>>>,
}

/// A node's HTTP answer (any status), or why no node gave one.
pub type Answer = Result<(StatusCode, String), String>;

impl RestateNodes {
    /// `urls`: one base URL per node (at least one; trailing slashes are ignored).
    pub fn new(urls: &[String]) -> Self {
        let urls: Vec<String> = urls
            .iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        Self {
            inner: Arc::new(Inner {
                suspect_until: Mutex::new(vec![None; urls.len()]),
                urls,
                next: AtomicUsize::new(0),
            }),
        }
    }

    /// The first configured node (for links a person opens).
    pub fn primary(&self) -> &str {
        self.inner.urls.first().map(String::as_str).unwrap_or("")
    }

    /// Sends the request `build` makes for a node's base URL, to one node after another until
    /// one answers. A request that may have reached a node (it timed out or its answer was cut)
    /// goes to the next node only when `resend_safe`; one that never connected always does.
    /// 502/503/504 from a node count as "this node cannot serve it now".
    pub async fn request<F>(&self, resend_safe: bool, build: F) -> Answer
    where
        F: Fn(&str) -> reqwest::RequestBuilder,
    {
        let mut last = String::from("no Restate node configured");
        for i in self.order() {
            let url = &self.inner.urls[i];
            match build(url).send().await {
                Ok(res) => {
                    let status = res.status();
                    match res.text().await {
                        Ok(body) if is_node_trouble(status) => {
                            self.suspect(i);
                            last = format!("{url} answered {status}");
                            if !resend_safe {
                                return Ok((status, body));
                            }
                        }
                        Ok(body) => {
                            self.clear(i);
                            return Ok((status, body));
                        }
                        Err(e) => {
                            let e = e.without_url();
                            self.suspect(i);
                            last = format!("{url}: answer cut: {e}");
                            if !resend_safe {
                                return Err(last);
                            }
                        }
                    }
                }
                Err(e) => {
                    // The path names who the call is about (a number, a user): keep it out.
                    let e = e.without_url();
                    self.suspect(i);
                    last = format!("{url}: {e}");
                    if !e.is_connect() && !resend_safe {
                        return Err(last);
                    }
                    tracing::warn!(node = %url, error = %e, "Restate node did not answer; trying the next");
                }
            }
        }
        Err(last)
    }

    /// Node indices for one call: round-robin from the next start, healthy nodes first, then
    /// the suspect ones (they may be back).
    fn order(&self) -> Vec<usize> {
        let n = self.inner.urls.len();
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let suspect = self.lock().clone();
        let (mut healthy, mut doubtful): (Vec<usize>, Vec<usize>) = (0..n)
            .map(|k| (start + k) % n.max(1))
            .partition(|&i| suspect[i].is_none_or(|until| until <= now));
        healthy.append(&mut doubtful);
        healthy
    }

    fn suspect(&self, i: usize) {
        self.lock()[i] = Some(Instant::now() + SUSPECT_FOR);
    }

    fn clear(&self, i: usize) {
        self.lock()[i] = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Instant>>> {
        // The data is a hint: a panic elsewhere while holding it leaves nothing inconsistent.
        self.inner
            .suspect_until
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

fn is_node_trouble(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

/// Whether an ingress call that may already have reached one node can be sent to another:
/// with an idempotency key Restate attaches the resend to the same invocation; a workflow's
/// `run` (`{Workflow}/{key}/run`, `/send` or not) runs once per key, so a resend attaches too.
pub fn resend_is_safe(path: &str, idempotency_key: Option<&str>) -> bool {
    if idempotency_key.is_some() {
        return true;
    }
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(parts.as_slice(), [_, _, "run"] | [_, _, "run", "send"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resends_only_what_restate_deduplicates() {
        assert!(resend_is_safe(
            "IdentityLifecycle/u/suspend/send",
            Some("k")
        ));
        assert!(resend_is_safe("ProvisionIdentity/id-g1/run/send", None));
        assert!(resend_is_safe("/ProvisionIdentity/id-g1/run", None));
        assert!(!resend_is_safe("SignalReceiver/n/receive_now", None));
        assert!(!resend_is_safe("SignalReceiver/n/start/send", None));
    }

    #[test]
    fn a_suspect_node_is_tried_last() {
        let nodes = RestateNodes::new(&["http://a".into(), "http://b".into(), "http://c".into()]);
        nodes.suspect(1);
        for _ in 0..6 {
            let order = nodes.order();
            assert_eq!(order.len(), 3);
            assert_eq!(order[2], 1, "{order:?}");
        }
        nodes.clear(1);
        let firsts: std::collections::HashSet<usize> = (0..3).map(|_| nodes.order()[0]).collect();
        assert_eq!(firsts.len(), 3, "calls take the nodes in turn");
    }
}
