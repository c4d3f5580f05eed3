//! The pool lends a connection that sat idle only after it answered: one whose backend ended
//! in the meantime (Postgres restarted, an operator terminated it) is replaced, not handed to a
//! query that would fail on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_whose_backend_ended_while_idle_is_replaced_before_it_is_lent() {
    let db = common::db::TestDb::new().await;
    // The pool's own rule, with every idle connection counted as idle long enough to be checked.
    let pool = db::pool_options(Duration::ZERO)
        .max_connections(1)
        .connect(&db.url)
        .await
        .unwrap();
    let (first,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();

    let (ended,): (bool,) = sqlx::query_as("SELECT pg_terminate_backend($1)")
        .bind(first)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert!(ended, "the backend was not terminated");
    // pg_terminate_backend only signals: wait until the backend is gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (left,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
                .bind(first)
                .fetch_one(&db.pool)
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "backend {first} lives on"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The one pooled connection is dead; the query still succeeds, on a new one.
    let (second,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .expect("a query after the backend ended failed: the dead connection was lent");
    assert_ne!(second, first);
    pool.close().await;
    db.drop().await;
}
