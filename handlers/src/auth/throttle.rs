//! Login throttling per account and per client IP (GCRA via governor). Either limit exceeded
//! answers 429 with `Retry-After`.

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct LoginThrottle {
    per_account: Arc<DefaultKeyedRateLimiter<String>>,
    per_ip: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

fn quota(burst: u32, period: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Default for LoginThrottle {
    /// 5 attempts per account then one per 12 s; 30 per IP then one per 2 s.
    fn default() -> Self {
        Self {
            per_account: Arc::new(RateLimiter::keyed(quota(5, Duration::from_secs(12)))),
            per_ip: Arc::new(RateLimiter::keyed(quota(30, Duration::from_secs(2)))),
        }
    }
}

impl LoginThrottle {
    /// Ok, or the number of seconds to wait.
    pub fn check(&self, account: &str, ip: IpAddr) -> Result<(), u64> {
        let clock = DefaultClock::default();
        let wait = |not_until: governor::NotUntil<_>| {
            not_until.wait_time_from(clock.now()).as_secs_f64().ceil() as u64
        };
        self.per_ip.check_key(&ip).map_err(wait)?;
        self.per_account
            .check_key(&account.to_owned())
            .map_err(wait)?;
        Ok(())
    }

    /// Drops idle keys so the maps do not grow without bound.
    pub fn prune(&self) {
        self.per_account.retain_recent();
        self.per_ip.retain_recent();
    }
}
