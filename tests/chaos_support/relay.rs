//! The network between the providers and our api replicas, made unreliable the way real
//! webhook delivery is: every webhook the sandbox sends (Stripe, Telnyx) is taken here, held
//! for a random while (so deliveries overtake each other: out of order), delivered to a random
//! api replica, retried on another while that one is down or answers 5xx (as Stripe and Telnyx
//! retry), and a quarter of them delivered a second time later. Nothing is dropped: the run's
//! end waits until every delivery has had its 2xx.

use axum::body::Bytes;
use axum::http::{HeaderMap, Uri};
use rand::Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Counts {
    pub received: AtomicU64,
    pub delivered: AtomicU64,
    pub duplicated: AtomicU64,
    pub retries: AtomicU64,
    pub in_flight: AtomicU64,
}

pub struct Relay {
    pub url: String,
    pub counts: Arc<Counts>,
    /// Deliveries an api refused with a 4xx: (path, status, answer). A genuine webhook must
    /// never be refused.
    pub refused: Arc<Mutex<Vec<(String, u16, String)>>>,
}

struct Hook {
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
}

impl Relay {
    pub async fn start(apis: Vec<String>) -> Self {
        let counts = Arc::new(Counts::default());
        let refused = Arc::new(Mutex::new(Vec::new()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let state = (counts.clone(), refused.clone(), Arc::new(apis), http);
        let app = axum::Router::new().fallback(axum::routing::post(
            move |uri: Uri, headers: HeaderMap, body: Bytes| {
                let (counts, refused, apis, http) = state.clone();
                async move {
                    let hook = Arc::new(Hook {
                        path: uri.path().to_owned(),
                        headers: headers
                            .iter()
                            .filter(|(n, _)| {
                                let n = n.as_str();
                                n.starts_with("stripe-")
                                    || n.starts_with("telnyx-")
                                    || n == "content-type"
                            })
                            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
                            .collect(),
                        body,
                    });
                    counts.received.fetch_add(1, Ordering::Relaxed);
                    let twice = rand::thread_rng().gen_bool(0.25);
                    for copy in 0..if twice { 2 } else { 1 } {
                        counts.in_flight.fetch_add(1, Ordering::SeqCst);
                        let (hook, counts, refused, apis, http) = (
                            hook.clone(),
                            counts.clone(),
                            refused.clone(),
                            apis.clone(),
                            http.clone(),
                        );
                        tokio::spawn(async move {
                            // Held a while: a later webhook often arrives first.
                            let hold = rand::thread_rng().gen_range(0..800) + copy * 1500;
                            tokio::time::sleep(Duration::from_millis(hold)).await;
                            deliver(&hook, &apis, &http, &counts, &refused).await;
                            if copy == 1 {
                                counts.duplicated.fetch_add(1, Ordering::Relaxed);
                            }
                            counts.in_flight.fetch_sub(1, Ordering::SeqCst);
                        });
                    }
                    "ok"
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url,
            counts,
            refused,
        }
    }

    pub fn in_flight(&self) -> u64 {
        self.counts.in_flight.load(Ordering::SeqCst)
    }
}

/// Until some replica answers 2xx (or refuses it with a 4xx, which is recorded).
async fn deliver(
    hook: &Hook,
    apis: &[String],
    http: &reqwest::Client,
    counts: &Counts,
    refused: &Mutex<Vec<(String, u16, String)>>,
) {
    let mut backoff = Duration::from_millis(100);
    let mut target = rand::thread_rng().gen_range(0..apis.len());
    loop {
        let mut req = http
            .post(format!("{}{}", apis[target], hook.path))
            .body(hook.body.clone());
        for (n, v) in &hook.headers {
            req = req.header(n, v);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                counts.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(r) if r.status().is_client_error() => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                refused
                    .lock()
                    .unwrap()
                    .push((hook.path.clone(), status, text));
                return;
            }
            _ => {}
        }
        counts.retries.fetch_add(1, Ordering::Relaxed);
        target = (target + 1) % apis.len();
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
