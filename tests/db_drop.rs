//! Dropping a test database while something still uses it: the drop ends those sessions and
//! refuses new ones, so a pool that keeps reconnecting (a detached task of a test's api, say)
//! cannot make it fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn a_database_is_dropped_while_a_pool_keeps_reconnecting_to_it() {
    let db = common::db::TestDb::new().await;
    let url = db.url.clone();
    // Another pool on the database, busy and reconnecting without pause, as a straggler is.
    let straggler = db::connect_lazy(&url).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (pool, halt) = (straggler.clone(), stop.clone());
    let (first_tx, first) = tokio::sync::oneshot::channel();
    let mut first_tx = Some(first_tx);
    let busy = tokio::spawn(async move {
        while !halt.load(Ordering::Relaxed) {
            let ok = sqlx::query("SELECT 1").execute(&pool).await.is_ok();
            if ok {
                if let Some(tx) = first_tx.take() {
                    let _ = tx.send(());
                }
            } else {
                tokio::task::yield_now().await;
            }
        }
    });
    // The straggler holds a session before the drop starts.
    first.await.unwrap();

    db::drop_database(&url).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    busy.await.unwrap();

    let server = db::connect(&format!("{}/postgres", common::db::server_url()))
        .await
        .unwrap();
    let name = url.rsplit('/').next().unwrap();
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&server)
        .await
        .unwrap();
    assert_eq!(left, 0, "the database is still there");
    server.close().await;
    straggler.close().await;
    // Dropping what is already gone is not an error (this drops it again).
    db.drop().await;
}
