//! Monthly partitions of `usage_events`.

use domain::Month;
use sqlx::PgPool;

/// Creates the month's partition if missing and audits the creation in the same transaction,
/// so "created" is recorded exactly when the table came into being. Returns true if created.
pub async fn ensure_usage_partition(
    pool: &PgPool,
    month: Month,
    actor: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (created,): (bool,) = sqlx::query_as("SELECT ensure_usage_partition($1)")
        .bind(month.first_day())
        .fetch_one(&mut *tx)
        .await?;
    if created {
        crate::audit::record(
            &mut *tx,
            actor,
            None,
            "usage_partition.created",
            serde_json::json!({ "month": month.to_string() }),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(created)
}

pub async fn exists(pool: &PgPool, month: Month) -> Result<bool, sqlx::Error> {
    let (found,): (bool,) = sqlx::query_as("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("usage_events_{}", month.suffix()))
        .fetch_one(pool)
        .await?;
    Ok(found)
}
