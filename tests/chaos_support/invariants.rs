//! What must hold once the faults stop and everything has settled, each check printing its
//! figures and returning the violations it found.

use super::driver::Ledger;
use super::world::World;
use billing::overage::{Accumulator, Served};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const TERMINAL: [&str; 4] = ["active", "suspended", "failed", "deleted"];

/// Waits (up to `limit`) until no webhook is on its way and every identity is terminal.
pub async fn settle(world: &World, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    loop {
        let open: Vec<(String, String)> = sqlx::query_as(
            "SELECT id::text, status FROM identities WHERE status NOT IN ('active', 'suspended', 'failed', 'deleted')",
        )
        .fetch_all(&world.pool)
        .await
        .unwrap_or_default();
        let in_flight = world.relay.in_flight();
        if open.is_empty() && in_flight == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "not settled after {limit:?}: {in_flight} webhooks in flight, identities not terminal: {open:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every identity terminal, and every user who paid has one (no provisioning was lost).
pub async fn identities(world: &World, ledger: &Ledger, out: &mut Vec<String>) {
    let rows: Vec<(String, String, String)> =
        sqlx::query_as("SELECT user_id::text, status, signal_status FROM identities")
            .fetch_all(&world.pool)
            .await
            .unwrap();
    let mut by_status: BTreeMap<String, usize> = BTreeMap::new();
    let mut signal: BTreeMap<String, usize> = BTreeMap::new();
    for (_, status, sig) in &rows {
        *by_status.entry(status.clone()).or_default() += 1;
        *signal.entry(sig.clone()).or_default() += 1;
        if !TERMINAL.contains(&status.as_str()) {
            out.push(format!("identity left {status}"));
        }
    }
    let paid = ledger.paid.lock().unwrap().clone();
    for p in &paid {
        if !rows.iter().any(|(u, _, _)| *u == p.user_id) {
            out.push(format!("{} paid but has no identity", p.email));
        }
    }
    println!(
        "  identities        {} for {} paying users: {by_status:?}; signal {signal:?}",
        rows.len(),
        paid.len()
    );
}

/// Provider resources are exactly what live identities hold: one Workspace user and one
/// number each for active and suspended identities, none for failed and deleted ones, and
/// nothing owned by nobody.
pub async fn resources(world: &World, out: &mut Vec<String>) {
    let r = world.sandbox.resources().await;
    let rows: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as("SELECT id::text, user_id::text, status, phone_number FROM identities")
            .fetch_all(&world.pool)
            .await
            .unwrap();
    let list = |v: &Value| v.as_array().cloned().unwrap_or_default();
    let users = list(&r["google"]["users"]);
    let numbers = list(&r["telnyx"]["numbers"]);
    let accounts = list(&r["signal"]["accounts"]);
    let (mut leaked, mut duplicated, mut missing) = (0, 0, 0);
    for (id, user, status, _) in &rows {
        let want = usize::from(status == "active" || status == "suspended");
        let u = users.iter().filter(|x| x["owner"] == user.as_str()).count();
        let n = numbers
            .iter()
            .filter(|x| {
                x["owner"]
                    .as_str()
                    .is_some_and(|o| o.starts_with(id.as_str()))
            })
            .count();
        for (what, got) in [("Workspace users", u), ("numbers", n)] {
            if got != want {
                out.push(format!(
                    "identity {id} ({status}) holds {got} {what}, wants {want}"
                ));
                match got.cmp(&want) {
                    std::cmp::Ordering::Greater if want == 0 => leaked += got,
                    std::cmp::Ordering::Greater => duplicated += got - want,
                    _ => missing += 1,
                }
            }
        }
    }
    let orphans = users
        .iter()
        .filter(|x| !rows.iter().any(|(_, u, _, _)| x["owner"] == u.as_str()))
        .count()
        + numbers
            .iter()
            .filter(|x| {
                !rows.iter().any(|(id, _, _, _)| {
                    x["owner"]
                        .as_str()
                        .is_some_and(|o| o.starts_with(id.as_str()))
                })
            })
            .count();
    if orphans > 0 {
        out.push(format!("{orphans} provider resources owned by no identity"));
    }
    // A Signal account lives only on a number a live identity holds.
    let live_numbers: Vec<&str> = rows
        .iter()
        .filter(|(_, _, s, _)| s == "active" || s == "suspended")
        .filter_map(|(_, _, _, p)| p.as_deref())
        .collect();
    let stray_signal = accounts
        .iter()
        .filter(|a| !live_numbers.contains(&a["number"].as_str().unwrap_or("")))
        .count();
    if stray_signal > 0 {
        out.push(format!(
            "{stray_signal} Signal accounts on numbers no live identity holds"
        ));
    }
    println!(
        "  provider resources {} Workspace users, {} numbers, {} Signal accounts: {leaked} leaked, {duplicated} duplicated, {missing} missing, {orphans} orphaned, {stray_signal} stray Signal",
        users.len(),
        numbers.len(),
        accounts.len()
    );
}

/// One usage event per answered request with the tokens its answer reported; at most one per
/// request that got no whole answer; none for requests nobody sent.
pub async fn usage(world: &World, ledger: &Ledger, out: &mut Vec<String>) {
    let events: Vec<(String, i64, i64, i32)> = sqlx::query_as(
        "SELECT request_id, input_tokens, output_tokens, status_code FROM usage_events",
    )
    .fetch_all(&world.pool)
    .await
    .unwrap();
    let mut by_id: HashMap<&str, Vec<(i64, i64, i32)>> = HashMap::new();
    for (id, i, o, s) in &events {
        by_id.entry(id.as_str()).or_default().push((*i, *o, *s));
    }
    let answered = ledger.answered.lock().unwrap().clone();
    let partial = ledger.partial.lock().unwrap().clone();
    let (mut lost, mut wrong, mut twice) = (0, 0, 0);
    let (mut tokens_answered, mut tokens_metered) = (0i64, 0i64);
    for a in &answered {
        tokens_answered += a.input + a.output;
        match by_id.get(a.request_id.as_str()).map(Vec::as_slice) {
            None | Some([]) => {
                lost += 1;
                out.push(format!(
                    "answered request {} of user {} not metered",
                    a.request_id, a.user_id
                ));
            }
            Some([(i, o, s)]) => {
                tokens_metered += i + o;
                if (*i, *o, *s) != (a.input, a.output, 200) {
                    wrong += 1;
                    out.push(format!(
                        "request {} metered {i}+{o} (status {s}), answered {}+{}",
                        a.request_id, a.input, a.output
                    ));
                }
            }
            Some(many) => {
                twice += 1;
                out.push(format!(
                    "request {} metered {} times",
                    a.request_id,
                    many.len()
                ));
            }
        }
    }
    for id in &partial {
        if by_id.get(id.as_str()).is_some_and(|v| v.len() > 1) {
            twice += 1;
            out.push(format!(
                "request {id} (no whole answer) metered more than once"
            ));
        }
    }
    let known: std::collections::HashSet<&str> = answered
        .iter()
        .map(|a| a.request_id.as_str())
        .chain(partial.iter().map(String::as_str))
        .collect();
    let unknown = by_id.keys().filter(|id| !known.contains(*id)).count();
    // A request whose answer never reached the client (proxy killed mid-way) may be metered
    // under an id the client never saw; those are counted, not failed.
    println!(
        "  usage             {} answered requests ({} tokens), metered {} tokens: {lost} lost, {wrong} wrong, {twice} twice; {} without a whole answer; {} events in all, {unknown} for requests whose answer never arrived",
        answered.len(),
        tokens_answered,
        tokens_metered,
        partial.len(),
        events.len()
    );
}

/// After one more sync of every paying user's month, Stripe's meter totals are the overage
/// the usage events come to on the user's plan.
pub async fn meters(world: &World, out: &mut Vec<String>) {
    let month = domain::Month::containing(chrono::Utc::now().date_naive());
    let http = reqwest::Client::new();
    // Every user Stripe knows, whether or not the driver saw its checkout through.
    let r_users: Vec<String> = sqlx::query_scalar(
        "SELECT id::text FROM users WHERE stripe_customer_id IS NOT NULL ORDER BY id",
    )
    .fetch_all(&world.pool)
    .await
    .unwrap();
    for user in &r_users {
        let res = http
            .post(format!(
                "{}/v1/admin/usage-sync/{user}/{month}",
                world.api_urls[0]
            ))
            .bearer_auth(world.admin())
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        if !res.status().is_success() {
            out.push(format!(
                "usage sync of {user} answered {}: {}",
                res.status(),
                res.text().await.unwrap_or_default()
            ));
        }
    }
    let stripe = world.sandbox.get_json("/stripe/_sandbox/resources").await;
    let total =
        |customer: &str, name: &str| crate::common::sandbox::meter_total(&stripe, customer, name);
    let (mut billed_in, mut billed_out, mut users_over) = (0, 0, 0);
    for user in &r_users {
        let (customer, plan): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT u.stripe_customer_id, s.plan FROM users u
             LEFT JOIN subscriptions s ON s.user_id = u.id WHERE u.id = $1::uuid",
        )
        .bind(user)
        .fetch_one(&world.pool)
        .await
        .unwrap();
        let (Some(customer), Some(plan)) = (customer, plan) else {
            continue;
        };
        let plan = domain::Plan::parse(&plan).expect("plan");
        let (start, end) = db::usage::bounds(month);
        let served: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT input_tokens, output_tokens FROM usage_events
             WHERE user_id = $1::uuid AND created_at >= $2 AND created_at < $3
             ORDER BY created_at, request_id",
        )
        .bind(user)
        .bind(start)
        .bind(end)
        .fetch_all(&world.pool)
        .await
        .unwrap();
        let mut acc = Accumulator::new(plan.included_tokens());
        for (i, o) in served {
            acc.add(Served {
                input_tokens: i,
                output_tokens: o,
            });
        }
        let over = acc.finish().overage;
        let got_in = total(&customer, "poindexter_overage_input_tokens");
        let got_out = total(&customer, "poindexter_overage_output_tokens");
        if (got_in, got_out) != (over.input_tokens, over.output_tokens) {
            // Which events made Stripe's totals, and what we recorded of them: the run's
            // database and sandbox are gone once it ends.
            let taken: Vec<String> = stripe["meter_events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["customer"] == customer.as_str())
                .map(|e| format!("{} = {} (at {})", e["identifier"], e["value"], e["created"]))
                .collect();
            let recorded: Vec<(String, i64, i64, Option<String>)> = sqlx::query_as(
                "SELECT identifier, cumulative, delta, reported_at::text FROM usage_reports
                 WHERE user_id = $1::uuid ORDER BY intended_at",
            )
            .bind(user)
            .fetch_all(&world.pool)
            .await
            .unwrap_or_default();
            out.push(format!(
                "{user}: Stripe meters {got_in}+{got_out} overage tokens, usage comes to {}+{}; \
                 Stripe took {taken:?}; recorded (identifier, cumulative, delta, accepted at) \
                 {recorded:?}",
                over.input_tokens, over.output_tokens
            ));
        }
        billed_in += got_in;
        billed_out += got_out;
        users_over += usize::from(over.input_tokens + over.output_tokens > 0);
    }
    println!(
        "  Stripe meters     {} users synced, {users_over} over their plan: {billed_in} input and {billed_out} output overage tokens metered",
        r_users.len()
    );
}

/// Every Stripe event answered and recorded once, no lifecycle change applied twice, no
/// genuine webhook refused.
pub async fn webhooks(world: &World, out: &mut Vec<String>) {
    let events = world.sandbox.get_json("/stripe/_sandbox/events").await;
    let events = events["data"].as_array().cloned().unwrap_or_default();
    let mut unrecorded = 0;
    for e in &events {
        let id = e["event"]["id"].as_str().unwrap_or_default();
        if !db::webhook_events::seen(&world.pool, "stripe", id)
            .await
            .unwrap()
        {
            unrecorded += 1;
            out.push(format!(
                "Stripe event {id} ({}) never recorded",
                e["event"]["type"]
            ));
        }
    }
    let applied_twice: Vec<(String, i64)> = sqlx::query_as(
        "SELECT detail->>'event', count(*) FROM audit_log WHERE action = 'billing.lifecycle'
         GROUP BY 1 HAVING count(*) > 1",
    )
    .fetch_all(&world.pool)
    .await
    .unwrap();
    for (id, n) in &applied_twice {
        out.push(format!("Stripe event {id} applied {n} times"));
    }
    let refused = world.relay.refused.lock().unwrap().clone();
    for (path, status, body) in &refused {
        out.push(format!("webhook to {path} refused {status}: {body}"));
    }
    let c = &world.relay.counts;
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "  webhooks          {} Stripe events; relay took {}, delivered {} ({} second copies, {} retries after a refusal or a dead replica): {unrecorded} unrecorded, {} applied twice, {} refused",
        events.len(),
        load(&c.received),
        load(&c.delivered),
        load(&c.duplicated),
        load(&c.retries),
        applied_twice.len(),
        refused.len()
    );
}
