//! The `identities` table and its per-step provisioning progress.

use crate::status::{IdentityStatus, SignalStatus, StepStatus};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub id: Uuid,
    pub user_id: Uuid,
    pub short_id: String,
    pub generation: i32,
    pub status: IdentityStatus,
    pub plan: Option<String>,
    pub email: Option<String>,
    pub google_user_id: Option<String>,
    pub phone_number: Option<String>,
    pub telnyx_number_id: Option<String>,
    pub signal_status: SignalStatus,
    pub signal_failure_reason: Option<String>,
    pub failure_reason: Option<String>,
    pub workflow_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, user_id, short_id, generation, status, plan, email, google_user_id, \
    phone_number, telnyx_number_id, signal_status, signal_failure_reason, failure_reason, \
    workflow_id, created_at, updated_at";

/// The deterministic short id of a user's identity: the Workspace address is derived from it,
/// so a retried provisioning finds the same address instead of minting a new one. The first
/// of `short_id_candidates`; another user may hold it already (40 bits collide around a
/// million users), so the identity keeps whichever candidate `begin_provisioning` got.
pub fn short_id_for(user_id: Uuid) -> String {
    short_id_candidates(user_id)[0].clone()
}

/// The short ids a user's identity may take, in order: longer and longer tails of the user id
/// (the tail of a v7 UUID is random; the head is a timestamp shared by neighbours), ending with
/// the whole id, which no other user can hold. Each depends on the user id only, so the choice
/// is the same however often it is made.
pub fn short_id_candidates(user_id: Uuid) -> Vec<String> {
    let hex = user_id.simple().to_string();
    [10, 14, 20, 32]
        .iter()
        .map(|n| hex[hex.len() - n..].to_owned())
        .collect()
}

pub async fn find_by_user(pool: &PgPool, user_id: Uuid) -> Result<Option<Identity>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM identities WHERE user_id = $1"
    ))
    .bind(user_id)
    .fetch_optional(pool)
    .await
}

pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<Identity>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM identities WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// On a pool or inside a transaction: a handler that holds a transaction must look the number
/// up on it, not on a second connection from the same pool, which it would wait for while
/// holding the first (with every connection held so, nobody gets one).
pub async fn find_by_phone<'e>(
    db: impl sqlx::PgExecutor<'e>,
    phone: &str,
) -> Result<Option<Identity>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM identities WHERE phone_number = $1"
    ))
    .bind(phone)
    .fetch_optional(db)
    .await
}

/// What `begin_provisioning` decided.
#[derive(Debug, Clone)]
pub struct Begun {
    pub identity: Identity,
    /// True when a new generation started (the identity was new, failed or deleted).
    pub fresh: bool,
}

/// Creates the user's identity, or starts a new generation of a failed or deleted one. An
/// identity already pending, provisioning or active is returned as it is, so a repeated
/// trigger leads to the same workflow key and provisions once.
pub async fn begin_provisioning(
    pool: &PgPool,
    user_id: Uuid,
    plan: &str,
) -> Result<Begun, sqlx::Error> {
    let mut tx: Transaction<'_, Postgres> = pool.begin().await?;
    let existing: Option<Identity> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM identities WHERE user_id = $1 FOR UPDATE"
    ))
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?;
    let begun = match existing {
        None => {
            // The first short id no other identity holds; the identity keeps it for every
            // generation, so each retry provisions the same address.
            let id = Uuid::now_v7();
            let mut inserted = None;
            for short_id in short_id_candidates(user_id) {
                inserted = sqlx::query_as(&format!(
                    "INSERT INTO identities (id, user_id, short_id, plan, status)
                     VALUES ($1, $2, $3, $4, 'pending')
                     ON CONFLICT (short_id) DO NOTHING
                     RETURNING {COLUMNS}"
                ))
                .bind(id)
                .bind(user_id)
                .bind(&short_id)
                .bind(plan)
                .fetch_optional(&mut *tx)
                .await?;
                if inserted.is_some() {
                    break;
                }
            }
            // The last candidate is the whole user id: only this user can hold it.
            let identity = inserted.ok_or(sqlx::Error::RowNotFound)?;
            Begun {
                identity,
                fresh: true,
            }
        }
        Some(i) if matches!(i.status, IdentityStatus::Failed | IdentityStatus::Deleted) => {
            sqlx::query("DELETE FROM provisioning_steps WHERE identity_id = $1")
                .bind(i.id)
                .execute(&mut *tx)
                .await?;
            let identity = sqlx::query_as(&format!(
                "UPDATE identities SET generation = generation + 1, status = 'pending', plan = $2,
                    failure_reason = NULL, signal_status = 'none', signal_failure_reason = NULL,
                    deleted_at = NULL, updated_at = now()
                 WHERE id = $1 RETURNING {COLUMNS}"
            ))
            .bind(i.id)
            .bind(plan)
            .fetch_one(&mut *tx)
            .await?;
            Begun {
                identity,
                fresh: true,
            }
        }
        Some(identity) => Begun {
            identity,
            fresh: false,
        },
    };
    tx.commit().await?;
    Ok(begun)
}

pub async fn set_status<'e>(
    exec: impl sqlx::Executor<'e, Database = Postgres>,
    id: Uuid,
    status: IdentityStatus,
    failure_reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE identities SET status = $2, failure_reason = $3, updated_at = now(),
                 deleted_at = CASE WHEN $2 = 'deleted' THEN now() ELSE deleted_at END WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(failure_reason)
        .execute(exec)
        .await?;
    Ok(())
}

pub async fn set_workflow(pool: &PgPool, id: Uuid, workflow_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE identities SET workflow_id = $2, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(workflow_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn set_workspace_user<'e>(
    exec: impl sqlx::Executor<'e, Database = Postgres>,
    id: Uuid,
    email: Option<&str>,
    google_user_id: Option<&str>,
    password_enc: Option<&[u8]>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE identities SET email = $2, google_user_id = $3,
            workspace_password_enc = COALESCE($4, workspace_password_enc), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(email)
    .bind(google_user_id)
    .bind(password_enc)
    .execute(exec)
    .await?;
    Ok(())
}

pub async fn workspace_password(pool: &PgPool, id: Uuid) -> Result<Option<Vec<u8>>, sqlx::Error> {
    let row: Option<(Option<Vec<u8>>,)> =
        sqlx::query_as("SELECT workspace_password_enc FROM identities WHERE id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await?;
    Ok(row.and_then(|r| r.0))
}

pub async fn set_number<'e>(
    exec: impl sqlx::Executor<'e, Database = Postgres>,
    id: Uuid,
    phone: Option<&str>,
    number_id: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE identities SET phone_number = $2, telnyx_number_id = $3, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(phone)
        .bind(number_id)
        .execute(exec)
        .await?;
    Ok(())
}

pub async fn set_signal(
    pool: &PgPool,
    id: Uuid,
    status: SignalStatus,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE identities SET signal_status = $2, signal_failure_reason = $3, updated_at = now() WHERE id = $1")
        .bind(id)
        .bind(status)
        .bind(reason)
        .execute(pool)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct Step {
    pub step: String,
    pub position: i32,
    pub status: StepStatus,
    pub attempts: i32,
    pub detail: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Marks the identity `provisioning` and `steps` (in order) `pending`, in one statement: one
/// round trip and one commit instead of one per row.
/// An identity that does not exist changes nothing.
pub async fn mark_provisioning(
    pool: &PgPool,
    identity_id: Uuid,
    steps: &[&str],
) -> Result<(), sqlx::Error> {
    let positions: Vec<i32> = (0..steps.len() as i32).collect();
    sqlx::query(
        "WITH identity AS (
            UPDATE identities SET status = $4, failure_reason = NULL, updated_at = now()
            WHERE id = $1 RETURNING id)
         INSERT INTO provisioning_steps (identity_id, step, position, status, attempts)
         SELECT identity.id, s.step, s.position, $5, 0
         FROM identity, unnest($2::text[], $3::int4[]) AS s(step, position)
         ON CONFLICT (identity_id, step) DO UPDATE SET
            status = EXCLUDED.status, detail = NULL, finished_at = NULL",
    )
    .bind(identity_id)
    .bind(steps)
    .bind(&positions)
    .bind(IdentityStatus::Provisioning)
    .bind(StepStatus::Pending)
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks every step of the identity that is not `done` yet `done`, finished now (a step that
/// never recorded its start, started now), as part of whatever `exec` commits: activation's
/// record that the steps are over. It holds even for a step whose own `done` record never
/// reached the table (its workflows process stopped with the record still queued).
pub async fn finish_steps<'e>(
    exec: impl sqlx::Executor<'e, Database = Postgres>,
    identity_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE provisioning_steps
         SET status = $2, started_at = COALESCE(started_at, now()), finished_at = now()
         WHERE identity_id = $1 AND status <> $2",
    )
    .bind(identity_id)
    .bind(StepStatus::Done)
    .execute(exec)
    .await?;
    Ok(())
}

/// Marks a step of the identity still shown `running` `failed` with `reason` (unless it has a
/// detail of its own), finished now, as part of whatever `exec` commits: when a provisioning
/// is marked failed nothing of it runs any more, so such a row is the step it stopped at, whose
/// own record was lost or never made (an operator's cancel ends the step mid-way).
pub async fn fail_running_steps<'e>(
    exec: impl sqlx::Executor<'e, Database = Postgres>,
    identity_id: Uuid,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE provisioning_steps
         SET status = $2, detail = COALESCE(detail, $4), finished_at = now()
         WHERE identity_id = $1 AND status = $3",
    )
    .bind(identity_id)
    .bind(StepStatus::Failed)
    .bind(StepStatus::Running)
    .bind(reason)
    .execute(exec)
    .await?;
    Ok(())
}

/// One step's progress as a workflow saw it, stamped with the moments it saw: what
/// `record_progress` writes. `attempts` is how many attempts the record starts (0 or 1; more
/// once several records of one step are folded together by `then`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressRow {
    pub identity_id: Uuid,
    pub step: &'static str,
    pub position: i32,
    pub status: StepStatus,
    pub detail: Option<String>,
    pub attempts: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl ProgressRow {
    /// `later`, a record of the same step made after this one, folded in: the row that writing
    /// both in turn leaves (the first start stays, attempts add up, the rest is the later's).
    pub fn then(self, later: ProgressRow) -> ProgressRow {
        ProgressRow {
            attempts: self.attempts + later.attempts,
            started_at: self.started_at.or(later.started_at),
            ..later
        }
    }
}

/// Writes progress rows, in order, in one statement committed without waiting for the disk
/// (`synchronous_commit` off for this one transaction). Progress is shown, never acted on, and
/// WAL is replayed in order: a crash can lose only the last fraction of a second of progress
/// rows, never one that a later durable write (a step's data, the status) depends on. Takes a
/// pool, not an executor, so it never makes a caller's transaction asynchronous. Records of
/// one step in `rows` are folded (`ProgressRow::then`): one statement cannot touch a row twice.
pub async fn record_progress(pool: &PgPool, rows: &[ProgressRow]) -> Result<(), sqlx::Error> {
    let mut folded: Vec<ProgressRow> = Vec::with_capacity(rows.len());
    let mut at: std::collections::HashMap<(Uuid, &str), usize> = Default::default();
    for row in rows {
        match at.entry((row.identity_id, row.step)) {
            std::collections::hash_map::Entry::Occupied(i) => {
                let earlier = &mut folded[*i.get()];
                *earlier = earlier.clone().then(row.clone());
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(folded.len());
                folded.push(row.clone());
            }
        }
    }
    let ids: Vec<Uuid> = folded.iter().map(|r| r.identity_id).collect();
    let steps: Vec<&str> = folded.iter().map(|r| r.step).collect();
    let positions: Vec<i32> = folded.iter().map(|r| r.position).collect();
    let statuses: Vec<&str> = folded.iter().map(|r| r.status.as_str()).collect();
    let details: Vec<Option<&str>> = folded.iter().map(|r| r.detail.as_deref()).collect();
    let attempts: Vec<i32> = folded.iter().map(|r| r.attempts).collect();
    let started: Vec<Option<DateTime<Utc>>> = folded.iter().map(|r| r.started_at).collect();
    let finished: Vec<Option<DateTime<Utc>>> = folded.iter().map(|r| r.finished_at).collect();
    // `set_config(.., true)` is `SET LOCAL`: it lasts until this statement's implicit
    // transaction commits, which it then governs.
    sqlx::query(
        "INSERT INTO provisioning_steps
            (identity_id, step, position, status, attempts, detail, started_at, finished_at)
         SELECT r.identity_id, r.step, r.position, r.status, r.attempts, r.detail,
                r.started_at, r.finished_at
         FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit,
              unnest($1::uuid[], $2::text[], $3::int4[], $4::text[], $5::int4[], $6::text[],
                     $7::timestamptz[], $8::timestamptz[])
                AS r(identity_id, step, position, status, attempts, detail, started_at, finished_at)
         ON CONFLICT (identity_id, step) DO UPDATE SET
            status = EXCLUDED.status,
            detail = EXCLUDED.detail,
            attempts = provisioning_steps.attempts + EXCLUDED.attempts,
            started_at = COALESCE(provisioning_steps.started_at, EXCLUDED.started_at),
            finished_at = EXCLUDED.finished_at",
    )
    .bind(ids)
    .bind(steps)
    .bind(positions)
    .bind(statuses)
    .bind(attempts)
    .bind(details)
    .bind(started)
    .bind(finished)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn steps(pool: &PgPool, identity_id: Uuid) -> Result<Vec<Step>, sqlx::Error> {
    sqlx::query_as(
        "SELECT step, position, status, attempts, detail, started_at, finished_at
         FROM provisioning_steps WHERE identity_id = $1 ORDER BY position",
    )
    .bind(identity_id)
    .fetch_all(pool)
    .await
}

/// Identities in flight or failed, for the operators' view.
pub async fn unfinished(pool: &PgPool) -> Result<Vec<Identity>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM identities
         WHERE status IN ('pending', 'provisioning', 'failed', 'deprovisioning')
            OR signal_status IN ('pending', 'captcha_required', 'failed')
         ORDER BY updated_at DESC LIMIT 500"
    ))
    .fetch_all(pool)
    .await
}

/// Records a Signal registration's state only while the identity still wants that number
/// registered: it exists, is not being torn down and still holds `number`. False otherwise,
/// which tells the registration to undo what it did and stop. One statement, so it cannot
/// interleave with deprovisioning's mark: it either lands first (and deprovisioning, which
/// unregisters after marking, cleans up), or it sees the mark.
///
/// A state already recorded is only read, not written again: most calls are a registration's
/// checks that it is still wanted (`pending` over `pending`), and a write would cost a
/// synchronous commit (a WAL flush) each. A read that misses a mark still being committed is
/// the same as a check that landed just before it.
pub async fn set_signal_if_wanted(
    pool: &PgPool,
    id: Uuid,
    number: &str,
    status: SignalStatus,
    reason: Option<&str>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "WITH target AS (
             SELECT id, (signal_status = $3 AND signal_failure_reason IS NOT DISTINCT FROM $4) AS same
             FROM identities
             WHERE id = $1 AND phone_number = $2 AND status NOT IN ('deprovisioning', 'deleted')
         ), changed AS (
             UPDATE identities
             SET signal_status = $3, signal_failure_reason = $4, updated_at = now()
             WHERE id = (SELECT id FROM target WHERE NOT same)
               AND phone_number = $2 AND status NOT IN ('deprovisioning', 'deleted')
             RETURNING id
         )
         SELECT EXISTS (SELECT 1 FROM target WHERE same) OR EXISTS (SELECT 1 FROM changed)",
    )
    .bind(id)
    .bind(number)
    .bind(status)
    .bind(reason)
    .fetch_one(pool)
    .await
}
