//! The faults: provider calls failing a fifth of the time (errors, resets, and timeouts on
//! calls that did happen), and one part of the stack after another killed with SIGKILL and
//! started again: the workflows process, an api, a proxy, a Restate node (one at a time, so
//! the cluster keeps its quorum), and Postgres restarted once, half-way.

use super::world::{Part, World};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// 20% of provider calls fail: 10% answer 503, 5% lose the connection, 5% act but answer
/// after the client gave up. The AI upstreams get errors and resets only (a held AI answer
/// would hold a stream open for a minute). Stripe's are on its API, not the sandbox's
/// dashboard routes the driver uses.
pub async fn inject_provider_faults(world: &World) {
    for (provider, route) in [
        ("google", "*"),
        ("telnyx", "*"),
        ("signal", "*"),
        ("stripe", "/v1/*"),
    ] {
        for (kind, p) in [("status", 0.1), ("reset", 0.05), ("timeout", 0.05)] {
            world
                .sandbox
                .fault(json!({"provider": provider, "route": route, "kind": kind,
                              "status": 503, "delay_ms": 2500, "probability": p}))
                .await;
        }
    }
    for provider in ["openai", "anthropic"] {
        for (kind, p) in [("status", 0.05), ("reset", 0.03)] {
            world
                .sandbox
                .fault(json!({"provider": provider, "kind": kind, "status": 503, "probability": p}))
                .await;
        }
    }
}

/// How often each part was killed.
pub type Kills = BTreeMap<String, u32>;

/// Kills and restarts parts at random until `end`; Postgres once, after `pg_at`.
pub async fn run(world: &mut World, end: Instant, pg_at: Instant) -> Kills {
    let mut kills = Kills::new();
    let mut pg_done = false;
    let mut round: Vec<u8> = Vec::new();
    while Instant::now() < end {
        let pause = rand::thread_rng().gen_range(2000..5000);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        if Instant::now() >= end {
            break;
        }
        if !pg_done && Instant::now() >= pg_at {
            pg_done = true;
            restart_postgres(world).await;
            *kills.entry("postgres (restart)".into()).or_default() += 1;
            continue;
        }
        let down = Duration::from_millis(rand::thread_rng().gen_range(200..2500));
        // Every kind of part in turn (in a new random order each round), a random instance.
        if round.is_empty() {
            round = vec![0, 1, 2, 3];
            round.shuffle(&mut rand::thread_rng());
        }
        let name = match round.pop().unwrap() {
            0 => bounce(&mut world.workflows, down).await,
            1 => {
                let i = rand::thread_rng().gen_range(0..world.apis.len());
                bounce(&mut world.apis[i], down).await
            }
            2 => {
                let i = rand::thread_rng().gen_range(0..world.proxies.len());
                bounce(&mut world.proxies[i], down).await
            }
            _ => {
                let node = rand::thread_rng().gen_range(0..world.cluster.nodes.len());
                world.cluster.kill9(node);
                tokio::time::sleep(down).await;
                world.cluster.restart(node).await;
                format!("restate-{}", world.cluster.nodes[node].name)
            }
        };
        eprintln!("chaos: killed and restarted {name}");
        *kills.entry(name).or_default() += 1;
    }
    if !pg_done {
        restart_postgres(world).await;
        *kills.entry("postgres (restart)".into()).or_default() += 1;
    }
    kills
}

/// SIGKILL, down for `down`, started again (and healthy); the part's name.
async fn bounce(part: &mut Part, down: Duration) -> String {
    part.kill9();
    tokio::time::sleep(down).await;
    part.start().await;
    part.name.clone()
}

/// Stops Postgres (fast: every connection cut) and starts it again a moment later.
async fn restart_postgres(world: &World) {
    eprintln!("chaos: restarting postgres");
    let pg = &world.pg;
    tokio::task::block_in_place(|| {
        pg.stop();
        std::thread::sleep(Duration::from_millis(1500));
        pg.start_again();
    });
}
