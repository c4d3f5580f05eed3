//! Each test gets its own database, created and migrated from scratch and dropped afterwards,
//! so tests run in parallel and leave nothing behind.

use sqlx::PgPool;

pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
}

/// Server to create test databases on; `TEST_DATABASE_SERVER` overrides.
pub fn server_url() -> String {
    std::env::var("TEST_DATABASE_SERVER")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

impl TestDb {
    pub async fn new() -> Self {
        let name = format!("pdx_test_{}", uuid::Uuid::new_v4().simple());
        let url = format!("{}/{}", server_url(), name);
        let pool = db::create_and_migrate(&url)
            .await
            .expect("create test database");
        Self { url, pool }
    }

    /// Drops the database (call at the end of the test; a panicking test leaves it for
    /// inspection and `scripts/test` cleans leftovers).
    pub async fn drop(self) {
        self.pool.close().await;
        db::drop_database(&self.url)
            .await
            .expect("drop test database");
    }
}
