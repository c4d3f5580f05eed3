//! The whole stack under faults for `CHAOS_SECONDS` (60 here; `scripts/chaos` runs 300):
//! three Restate nodes, two api and two proxy replicas, the workflows process and a Postgres
//! of its own, with users signing up, paying, provisioning, changing plans, failing payments
//! and cancelling, AI traffic through both proxies, webhooks delivered twice and out of order,
//! a fifth of provider calls failing, and every part killed with SIGKILL and restarted at
//! random (Postgres restarted once). Then, faults cleared and everything settled, it checks:
//! every identity terminal; provider resources exactly those live identities hold; one usage
//! event per answered request with its exact tokens; Stripe meter totals equal to the overage
//! the usage comes to; no webhook applied twice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod chaos_support;
mod common;
#[path = "proxy_support/pg.rs"]
mod pg;

use chaos_support::{driver, invariants, monkey, world::World};
use common::process::instances;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// For `pg.rs`, which takes its port from its parent module.
fn free_port() -> u16 {
    common::ports::free_port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_stack_under_faults_loses_and_duplicates_nothing() {
    let seconds: u64 = std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let setup = Instant::now();
    let mut world = World::start().await;
    println!(
        "chaos: stack up in {:.0?}; running {seconds} s",
        setup.elapsed()
    );

    monkey::inject_provider_faults(&world).await;
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let driver = Arc::new(driver::Driver {
        apis: world.api_urls.clone(),
        proxies: world.proxy_urls.clone(),
        sandbox: world.sandbox.url.clone(),
        admin_token: world.admin().to_owned(),
        ledger: Arc::default(),
        http: reqwest::Client::new(),
    });
    let ledger = driver.ledger.clone();
    let traffic = tokio::spawn(driver.run(started + Duration::from_secs(seconds * 3 / 4), end));
    let kills = monkey::run(&mut world, end, started + Duration::from_secs(seconds / 2)).await;
    traffic.await.expect("the traffic ended with a panic");

    // Faults off, every part up: whatever was interrupted finishes now.
    let faults = world.sandbox.get_json("/_sandbox/faults").await;
    let mut fired = std::collections::BTreeMap::<String, u64>::new();
    for f in faults["faults"].as_array().into_iter().flatten() {
        let name = format!(
            "{} {}",
            f["provider"].as_str().unwrap_or("?"),
            f["kind"].as_str().unwrap_or("?")
        );
        *fired.entry(name).or_default() += f["fired"].as_u64().unwrap_or(0);
    }
    println!("chaos: provider faults fired {fired:?}");
    world.sandbox.clear_faults().await;
    world.all_up().await;
    let settling = Instant::now();
    let settled = invariants::settle(&world, Duration::from_secs(180)).await;
    println!(
        "chaos: {seconds} s of traffic, settled in {:.0?}; kills {kills:?}",
        settling.elapsed()
    );
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "  users             {} signed up, {} paid, {} saw their identity active; {} plan changes, {} payment failures, {} cancellations, {} usage syncs during the run",
        load(&ledger.signups),
        ledger.paid.lock().unwrap().len(),
        load(&ledger.active),
        load(&ledger.plan_changes),
        load(&ledger.payment_failures),
        load(&ledger.cancellations),
        load(&ledger.usage_syncs),
    );
    println!(
        "  AI requests       answers by status {:?}, {} with no answer at all",
        ledger.statuses.lock().unwrap(),
        load(&ledger.no_answer),
    );
    let mut violations: Vec<String> = ledger.unauthorized.lock().unwrap().clone();
    if let Err(e) = settled {
        violations.push(e);
    }
    invariants::identities(&world, &ledger, &mut violations).await;
    invariants::resources(&world, &mut violations).await;
    invariants::usage(&world, &ledger, &mut violations).await;
    invariants::meters(&world, &mut violations).await;
    invariants::webhooks(&world, &mut violations).await;
    if violations.is_empty() {
        println!("chaos: every invariant holds");
    } else {
        println!("chaos: {} violations", violations.len());
        for v in &violations {
            println!("  VIOLATION {v}");
        }
        // Kept after a failed run (a panicking test keeps its processes' logs).
        let parts = std::iter::once(&world.workflows)
            .chain(&world.apis)
            .chain(&world.proxies)
            .flat_map(|part| instances(&part.retired, &part.proc));
        let nodes = world
            .cluster
            .nodes
            .iter()
            .flat_map(|n| instances(&n.retired, &n.proc));
        for p in parts.chain(nodes) {
            println!("  log of {}: {}", p.name, p.log.display());
        }
    }
    assert!(
        violations.is_empty(),
        "{} invariant violations (above)",
        violations.len()
    );
}
