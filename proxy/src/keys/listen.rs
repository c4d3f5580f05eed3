//! Keeps the key table current: LISTEN on `poindexter_keys` (the migration's triggers NOTIFY
//! a user id on key insert/revoke and subscription or identity status changes) reloads that
//! user within milliseconds; a lost connection triggers a full reload once it is back
//! (notifications sent meanwhile are gone); timers re-read period usage and, as a safety net,
//! everything.

use crate::keys::{load, KeyStore};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

pub const CHANNEL: &str = "poindexter_keys";

pub async fn full_reload(pool: &PgPool, store: &KeyStore) -> bool {
    match load::snapshot(pool, None).await {
        Ok(s) => {
            store.replace_all(s);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot load API keys; keeping the previous table");
            false
        }
    }
}

async fn reload_user(pool: &PgPool, store: &KeyStore, payload: &str) -> bool {
    let Ok(user_id) = payload.trim().parse::<uuid::Uuid>() else {
        return full_reload(pool, store).await;
    };
    match load::snapshot(pool, Some(user_id)).await {
        Ok(s) => {
            store.replace_user(user_id, s);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot reload a user's keys");
            false
        }
    }
}

async fn refresh_totals(pool: &PgPool, store: &KeyStore) {
    let users = store.users();
    let periods: Vec<_> = users
        .iter()
        .filter_map(|u| u.period_start.read().ok().map(|p| (u.user_id, *p)))
        .collect();
    match load::period_totals(pool, &periods).await {
        Ok(totals) => {
            for u in users {
                if let Some((t, c)) = totals.get(&u.user_id) {
                    u.observe_totals(*t, *c);
                }
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot refresh period usage"),
    }
}

/// Runs until `stop` turns true.
pub async fn run(
    pool: PgPool,
    store: Arc<KeyStore>,
    key_refresh: Duration,
    usage_refresh: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut listener: Option<PgListener> = None;
    // A full reload is owed after start-up failures and after every lost connection.
    let mut reload_owed = !store.is_loaded();
    let mut keys_tick = tokio::time::interval(key_refresh);
    let mut usage_tick = tokio::time::interval(usage_refresh);
    keys_tick.tick().await;
    usage_tick.tick().await;
    loop {
        if *stop.borrow() {
            return;
        }
        if listener.is_none() {
            // Through our pool: its short acquire timeout, not sqlx's 30 s default.
            match PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(CHANNEL).await {
                    Ok(()) => {
                        listener = Some(l);
                        reload_owed = true;
                    }
                    Err(e) => tracing::warn!(error = %e, "LISTEN failed"),
                },
                Err(e) => tracing::debug!(error = %e, "cannot connect the key listener"),
            }
            if listener.is_none() {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = stop.changed() => return,
                }
                continue;
            }
        }
        if reload_owed {
            reload_owed = !full_reload(&pool, &store).await;
        }
        let Some(l) = listener.as_mut() else { continue };
        tokio::select! {
            n = l.try_recv() => match n {
                Ok(Some(n)) => {
                    if !reload_user(&pool, &store, n.payload()).await {
                        reload_owed = true;
                    }
                }
                // The connection dropped; sqlx reconnects on the next call, but what was
                // sent meanwhile is lost, hence the full reload.
                Ok(None) => reload_owed = true,
                Err(e) => {
                    tracing::warn!(error = %e, "key listener lost its connection");
                    listener = None;
                }
            },
            _ = keys_tick.tick() => reload_owed = true,
            _ = usage_tick.tick() => refresh_totals(&pool, &store).await,
            _ = stop.changed() => return,
        }
    }
}
