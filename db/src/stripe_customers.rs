//! `users.stripe_customer_id`: one Stripe customer per user, created once.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Locks the user's row for the rest of the transaction (so concurrent subscribe calls create
/// one customer) and returns (email, stripe_customer_id).
pub async fn lock(
    conn: &mut PgConnection,
    user_id: Uuid,
) -> Result<Option<(String, Option<String>)>, sqlx::Error> {
    sqlx::query_as("SELECT email, stripe_customer_id FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

pub async fn set(
    conn: &mut PgConnection,
    user_id: Uuid,
    customer: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET stripe_customer_id = $2, updated_at = now() WHERE id = $1")
        .bind(user_id)
        .bind(customer)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn of_user(pool: &PgPool, user_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT stripe_customer_id FROM users WHERE id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|r| r.0))
}

pub async fn user_of<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    customer: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let row: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM users WHERE stripe_customer_id = $1")
        .bind(customer)
        .fetch_optional(exec)
        .await?;
    Ok(row.map(|r| r.0))
}
