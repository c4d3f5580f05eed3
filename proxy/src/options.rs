//! What the proxy needs to run, taken from the typed `Config` plus a few proxy-only knobs.
//!
//! Upstream failover: `OPENAI_BASE_URL` / `ANTHROPIC_BASE_URL` and `OPENAI_API_KEY` /
//! `ANTHROPIC_API_KEY` may each hold a comma-separated list; the proxy tries the pairs
//! (base i mod n, key i mod m) in order. Proxy-only variables: `PROXY_RATE_PER_MINUTE`
//! (per key, default 600), `PROXY_RATE_BURST` (default 60), `PROXY_SPILL_PATH` (default
//! `.data/proxy-usage.spill`), `PROXY_UPSTREAM_HEADERS_TIMEOUT_SECS` (default 600) and
//! `PROXY_UPSTREAM_IDLE_TIMEOUT_SECS` (default 300), `PROXY_SHUTDOWN_GRACE_SECS` (default 20)
//! and `PROXY_CLIENT_IDLE_TIMEOUT_SECS` (default 60).

use config::Config;
use std::path::PathBuf;
use std::time::Duration;

/// One upstream endpoint and the key it is called with.
#[derive(Clone)]
pub struct Target {
    pub base_url: String,
    pub api_key: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Target({})", self.base_url)
    }
}

/// Not `Debug`: the database URL may carry a password.
#[derive(Clone)]
pub struct Options {
    pub database_url: String,
    pub redis_url: Option<String>,
    /// OpenAI-compatible endpoints; base URLs include the version (`…/v1`).
    pub openai: Vec<Target>,
    /// Anthropic endpoints; base URLs without the version.
    pub anthropic: Vec<Target>,
    pub rate_per_minute: u32,
    pub rate_burst: u32,
    pub spill_path: PathBuf,
    /// Extra certificate authorities (PEM) trusted for upstreams besides the Mozilla roots,
    /// e.g. a corporate egress proxy's (`PROXY_UPSTREAM_CA_FILE`).
    pub upstream_ca_file: Option<PathBuf>,
    /// How often period usage is re-read from Postgres, so budgets hold across instances.
    pub usage_refresh: Duration,
    /// Full key reload, a safety net behind LISTEN/NOTIFY.
    pub key_refresh: Duration,
    pub batch_max: usize,
    pub batch_wait: Duration,
    /// Upper bound of attempts across targets before giving up (failover).
    pub max_attempts: usize,
    pub upstream_timeouts: UpstreamTimeouts,
    /// After a stop signal, how long requests under way may still run before they are cut
    /// and metered for what they produced (`PROXY_SHUTDOWN_GRACE_SECS`, default 20: inside
    /// the 30 s a supervisor such as Kubernetes waits before it kills).
    pub shutdown_grace: Duration,
    /// A client connection that sends no complete request head for this long (idle between
    /// keep-alive requests, or dribbling headers) is closed
    /// (`PROXY_CLIENT_IDLE_TIMEOUT_SECS`, default 60).
    pub client_idle_timeout: Duration,
}

/// How long an upstream may keep the proxy waiting. Without them a provider that accepts a
/// connection and then says nothing would hold the caller, and the proxy, forever.
#[derive(Clone, Copy, Debug)]
pub struct UpstreamTimeouts {
    /// Until an answer's headers, per attempt; an attempt that runs out moves on to the next
    /// target like a refused one. The default is the official SDKs' own request timeout:
    /// a non-streamed answer from a slow model can take minutes, and arrives all at once.
    pub headers: Duration,
    /// Between two pieces of an answer's body. A stream that goes quiet for this long is
    /// ended (as a cut one is) and metered for what it produced.
    pub idle: Duration,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        Self {
            headers: Duration::from_secs(600),
            idle: Duration::from_secs(300),
        }
    }
}

/// How long a usage batch gathers events at most. Under load a batch fills (`BATCH_MAX`) long
/// before, so this only matters at lower rates, where each batch's fixed cost (eight round
/// trips to Postgres, the journal's rotation: ~0.3 ms of CPU) is shared by fewer events.
/// Measured with `scripts/bench-proxy` on 2 cores at 2,000 streams/s: the writer cost
/// 6.8–7.2 µs a request with 20 ms batches, 3.5 µs with 50 ms. 5 ms batches tripled the
/// sequential p99 (a write every few requests); 100 ms ones made bursts of database work that
/// lengthened the tail under load, before batches were capped at `BATCH_MAX`.
pub const BATCH_WAIT: Duration = Duration::from_millis(50);

/// A batch goes as soon as it holds this many events. Under load that keeps each write short
/// (~0.4 ms of Postgres CPU): on a box where Postgres shares the cores, 20 ms of events at
/// 60k requests/s written at once stalled a core for ~2 ms every 20 ms, and that stall was
/// the proxy's p99 at 64 connections.
pub const BATCH_MAX: usize = 250;

impl Options {
    pub fn from_config(config: &Config) -> Self {
        let u = &config.upstream;
        let env_u32 = |name: &str, default: u32| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Self {
            database_url: config.database_url.clone(),
            redis_url: config.redis_url.clone(),
            openai: targets(&u.openai_base_url, u.openai_api_key.expose()),
            anthropic: targets(&u.anthropic_base_url, u.anthropic_api_key.expose()),
            rate_per_minute: env_u32("PROXY_RATE_PER_MINUTE", 600).max(1),
            rate_burst: env_u32("PROXY_RATE_BURST", 60).max(1),
            upstream_ca_file: std::env::var_os("PROXY_UPSTREAM_CA_FILE").map(PathBuf::from),
            spill_path: std::env::var("PROXY_SPILL_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|_| PathBuf::from(".data/proxy-usage.spill")),
            usage_refresh: Duration::from_secs(5),
            key_refresh: Duration::from_secs(60),
            batch_max: BATCH_MAX,
            batch_wait: BATCH_WAIT,
            max_attempts: 3,
            upstream_timeouts: UpstreamTimeouts {
                headers: Duration::from_secs(
                    env_u32("PROXY_UPSTREAM_HEADERS_TIMEOUT_SECS", 600)
                        .max(1)
                        .into(),
                ),
                idle: Duration::from_secs(
                    env_u32("PROXY_UPSTREAM_IDLE_TIMEOUT_SECS", 300)
                        .max(1)
                        .into(),
                ),
            },
            shutdown_grace: Duration::from_secs(env_u32("PROXY_SHUTDOWN_GRACE_SECS", 20).into()),
            client_idle_timeout: Duration::from_secs(
                env_u32("PROXY_CLIENT_IDLE_TIMEOUT_SECS", 60).max(1).into(),
            ),
        }
    }
}

/// Pairs comma-separated base URLs with comma-separated keys.
pub fn targets(bases: &str, keys: &str) -> Vec<Target> {
    let bases: Vec<&str> = split(bases);
    let keys: Vec<&str> = split(keys);
    if bases.is_empty() {
        return Vec::new();
    }
    let n = bases.len().max(keys.len());
    (0..n)
        .map(|i| Target {
            base_url: bases[i % bases.len()].trim_end_matches('/').to_owned(),
            api_key: if keys.is_empty() {
                String::new()
            } else {
                keys[i % keys.len()].to_owned()
            },
        })
        .collect()
}

fn split(list: &str) -> Vec<&str> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_bases_and_keys() {
        let t = targets("http://a/v1, http://b/v1/", "k1,k2,k3");
        let got: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.base_url.as_str(), t.api_key.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("http://a/v1", "k1"),
                ("http://b/v1", "k2"),
                ("http://a/v1", "k3")
            ]
        );
        assert!(targets("", "k").is_empty());
    }
}
