//! Limits hold across proxy replicas, not per replica: with REDIS_URL the per-key rate is one
//! budget for every instance, and a spending cap reached through one instance closes the
//! others too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod proxy_support;

use common::db::TestDb;
use proxy_support as ps;
use std::time::{Duration, Instant};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

#[tokio::test]
async fn the_rate_limit_is_shared_by_every_instance_through_redis() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), None).await;
    let mut options = ps::options(&db.url, sandbox);
    options.redis_url = Some(redis_url());
    options.rate_per_minute = 4;
    options.rate_burst = 4;
    let a = ps::RunningProxy::start(options.clone()).await;
    let b = ps::RunningProxy::start(options).await;
    let c = ps::client();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let proxy = if i % 2 == 0 { &a } else { &b };
        let res = c
            .post(proxy.url("/v1/chat/completions"))
            .bearer_auth(&user.key)
            .json(&ps::chat_body("gpt-4o-mini", false))
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
        }
    }
    // 4 allowed in all, not 4 per instance.
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429, 429, 429]);
    a.stop().await;
    b.stop().await;
    db.drop().await;
}

#[tokio::test]
async fn a_spending_cap_reached_on_one_instance_closes_the_others() {
    let db = TestDb::new().await;
    let sandbox = ps::start_sandbox().await;
    let user = ps::user(&db.pool, Some(("basic", "active")), Some(1)).await;
    let options = ps::options(&db.url, sandbox);
    // B re-reads spend from the shared usage table every `usage_refresh`; ten of them is the
    // bound (the spend itself is written within milliseconds by A's batched writer).
    let bound = options.usage_refresh * 10;
    let a = ps::RunningProxy::start(options.clone()).await;
    let b = ps::RunningProxy::start(options).await;
    let c = ps::client();
    let chat = |proxy: &ps::RunningProxy| {
        c.post(proxy.url("/v1/chat/completions"))
            .bearer_auth(&user.key)
            .json(&ps::chat_body("gpt-4o-mini", false))
            .send()
    };
    assert_eq!(chat(&a).await.unwrap().status(), 200);
    assert_eq!(chat(&a).await.unwrap().status(), 402);
    // B never served this user, yet learns of the spend from the shared usage table.
    let started = Instant::now();
    loop {
        let status = chat(&b).await.unwrap().status();
        if status == 402 {
            break;
        }
        assert_eq!(
            status, 200,
            "B answers the capped user as before, or refuses"
        );
        assert!(
            started.elapsed() < bound,
            "instance B still serving a capped user after {bound:?} (10 usage refreshes)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    a.stop().await;
    b.stop().await;
    db.drop().await;
}
