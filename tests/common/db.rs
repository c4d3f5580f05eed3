//! Each test gets its own database, created and migrated from scratch and dropped when the
//! test is done with it, so tests run in parallel and leave nothing behind.

use sqlx::PgPool;

/// A fresh database, dropped when this goes out of scope (or by `drop().await`, which also
/// closes the pool first). A panicking test keeps its database for inspection; `scripts/test`
/// cleans such leftovers.
pub struct TestDb {
    pub url: String,
    pub pool: PgPool,
    dropped: bool,
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
        Self {
            url,
            pool,
            dropped: false,
        }
    }

    /// Drops the database now, closing the pool first.
    pub async fn drop(mut self) {
        self.pool.close().await;
        db::drop_database(&self.url)
            .await
            .expect("drop test database");
        self.dropped = true;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.dropped || std::thread::panicking() {
            return;
        }
        // Drop cannot await, and the test's runtime may be single-threaded and busy dropping
        // us: a runtime of its own on a thread of its own. The drop is forced, so the pool's
        // still-open connections do not hold it up.
        let url = self.url.clone();
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(db::drop_database(&url))
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {dropped:?}", self.url);
        }
    }
}

/// Makes the database refuse the first change of an identity's status to `status` (a fault in
/// our own bookkeeping, part-way through the step that makes it); `times_tried` then says how
/// often that change was attempted.
pub async fn refuse_first_status_change(pool: &PgPool, status: &str) {
    sqlx::raw_sql(&format!(
        "CREATE SEQUENCE tried_{status};
         CREATE FUNCTION refuse_first_{status}() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('tried_{status}') = 1 THEN
             RAISE EXCEPTION 'injected: the first change to {status} is refused';
           END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_first_{status} BEFORE UPDATE OF status ON identities
           FOR EACH ROW WHEN (NEW.status = '{status}' AND OLD.status <> '{status}')
           EXECUTE FUNCTION refuse_first_{status}();"
    ))
    .execute(pool)
    .await
    .expect("install the refusal");
}

/// How often the status change that `refuse_first_status_change` refuses was attempted.
pub async fn times_tried(pool: &PgPool, status: &str) -> i64 {
    let (tried,): (i64,) = sqlx::query_as(&format!("SELECT last_value FROM tried_{status}"))
        .fetch_one(pool)
        .await
        .expect("read the refusal's count");
    tried
}
