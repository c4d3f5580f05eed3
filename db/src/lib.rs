//! Postgres access: pool set-up, migrations, and one module of queries per table.

pub mod account_closing;
pub mod activity;
pub mod api_keys;
pub mod audit;
pub mod identities;
pub mod incoming_sms;
pub mod oauth;
pub mod partitions;
pub mod portal_sessions;
pub mod refresh_tokens;
pub mod signal_messages;
pub mod status;
pub mod stripe_customers;
pub mod subscriptions;
pub mod usage;
pub mod users;
pub mod webhook_events;

use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres};
use std::str::FromStr;
use std::time::Duration;

pub use sqlx::Error;

/// The migrations compiled into the binary, so a deployed `poindexter migrate` needs no files.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// A pool that fails fast when the database is down instead of hanging the caller.
pub async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("poindexter");
    pool_options(PING_IF_IDLE_FOR)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

/// Pool that connects on first use: a component can start while the database is down and
/// report it through `/readyz`.
pub fn connect_lazy(url: &str) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("poindexter");
    Ok(pool_options(PING_IF_IDLE_FOR)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options))
}

/// A pooled connection idle at least this long is checked with a round trip before it is lent.
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Sixteen connections; one idle for `ping_if_idle_for` or more is pinged before it is lent,
/// and replaced if it does not answer (Postgres restarted, a backend was terminated). sqlx's
/// default pings every connection it lends: a round trip before each use, on top of the one it
/// makes when the connection comes back (which stays: it flushes what a cancelled query left
/// and proves the connection alive then). Under load that first ping was one of a statement's
/// three round trips. A connection that came back under a second ago was alive then; one that
/// outlived a restart has idled through the restart, so it is still checked.
pub fn pool_options(ping_if_idle_for: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(16)
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= ping_if_idle_for {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

/// Creates the database if it does not exist, then applies every pending migration.
pub async fn create_and_migrate(url: &str) -> Result<PgPool, sqlx::Error> {
    if !Postgres::database_exists(url).await? {
        Postgres::create_database(url).await?;
        tracing::info!("created database");
    }
    let pool = connect(url).await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Drops a database (tests clean up after themselves), whoever is still connected. New sessions
/// are refused first: `WITH (FORCE)` alone ends the sessions it finds, and a pool that
/// reconnects in between (a task of a test's api still running) made the drop fail, "being
/// accessed by other users". A database that does not exist is already dropped.
pub async fn drop_database(url: &str) -> Result<(), sqlx::Error> {
    use sqlx::{ConnectOptions, Connection};
    let options = PgConnectOptions::from_str(url)?;
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Err(sqlx::Error::Configuration("no database named".into()));
    };
    let mut admin = options.database("postgres").connect().await?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    let refused = sqlx::query(&format!("ALTER DATABASE {quoted} ALLOW_CONNECTIONS false"))
        .execute(&mut admin)
        .await;
    let dropped = match refused {
        // 3D000: no such database.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => Ok(()),
        Err(e) => Err(e),
        Ok(_) => sqlx::query(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
            .execute(&mut admin)
            .await
            .map(|_| ()),
    };
    admin.close().await?;
    dropped
}

/// True when Postgres answers a trivial query.
pub async fn ping(pool: &PgPool) -> bool {
    sqlx::query("SELECT 1").execute(pool).await.is_ok()
}

/// Postgres' unique-violation SQLSTATE, mapped by callers to 409.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.code().as_deref() == Some("23505"))
}
