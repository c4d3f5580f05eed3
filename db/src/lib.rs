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
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
}

/// Pool that connects on first use: a component can start while the database is down and
/// report it through `/readyz`.
pub fn connect_lazy(url: &str) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("poindexter");
    Ok(PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options))
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
