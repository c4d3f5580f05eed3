//! Per-key rate limit (GCRA). In process with `governor` by default; with `REDIS_URL` the
//! cell state lives in Redis (one Lua script, atomic), so every proxy instance shares one
//! budget per key. If Redis fails, requests are let through (and counted in metrics):
//! availability of AI access wins over exact limiting.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::time::Duration;
use uuid::Uuid;

pub enum Limiter {
    Local {
        limiter: DefaultKeyedRateLimiter<Uuid>,
        clock: DefaultClock,
    },
    Redis {
        conn: redis::aio::ConnectionManager,
        script: redis::Script,
        interval_us: u64,
        tolerance_us: u64,
    },
}

/// GCRA on a theoretical arrival time (TAT) in microseconds, Redis server time.
/// Returns 0 when allowed, otherwise microseconds to wait.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then return allow_at - now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return 0
";

impl Limiter {
    pub fn local(per_minute: u32, burst: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self::Local {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    pub async fn redis(url: &str, per_minute: u32, burst: u32) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        let interval_us = 60_000_000 / u64::from(per_minute.max(1));
        Ok(Self::Redis {
            conn,
            script: redis::Script::new(GCRA),
            interval_us,
            tolerance_us: interval_us * u64::from(burst.max(1) - 1),
        })
    }

    /// `Ok(())` when the key may proceed, otherwise how long until it may.
    pub async fn check(&self, key: Uuid) -> Result<(), Duration> {
        match self {
            Self::Local { limiter, clock } => limiter
                .check_key(&key)
                .map_err(|not_until| not_until.wait_time_from(clock.now())),
            Self::Redis {
                conn,
                script,
                interval_us,
                tolerance_us,
            } => {
                let mut conn = conn.clone();
                let wait: Result<u64, _> = script
                    .key(format!("pdx:rl:{key}"))
                    .arg(*interval_us)
                    .arg(*tolerance_us)
                    .invoke_async(&mut conn)
                    .await;
                match wait {
                    Ok(0) => Ok(()),
                    Ok(us) => Err(Duration::from_micros(us)),
                    Err(e) => {
                        metrics::counter!("poindexter_proxy_ratelimit_redis_errors_total")
                            .increment(1);
                        tracing::warn!(error = %e, "rate limit store unavailable; allowing");
                        Ok(())
                    }
                }
            }
        }
    }

    /// Drops idle keys' state now and then so memory stays flat.
    pub fn housekeeping(&self) {
        if let Self::Local { limiter, .. } = self {
            limiter.retain_recent();
        }
    }
}
