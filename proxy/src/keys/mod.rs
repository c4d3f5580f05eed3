//! API keys and their owners' access, held in memory so the hot path never waits on Postgres.
//! `load` reads them, `listen` keeps them current (LISTEN/NOTIFY plus periodic refreshes).

pub mod listen;
pub mod load;
mod recent;

use domain::Plan;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

/// Whether a user may use AI access right now, as the database last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Active {
        plan: Plan,
        cap_microdollars: Option<i64>,
    },
    NoSubscription,
    Suspended,
}

/// One user's access and usage in the current billing period (shared by all their keys).
#[derive(Debug)]
pub struct UserState {
    pub user_id: Uuid,
    access: RwLock<Access>,
    pub period_start: RwLock<chrono::DateTime<chrono::Utc>>,
    used_tokens: AtomicI64,
    spent_microdollars: AtomicI64,
}

impl UserState {
    pub fn new(user_id: Uuid, access: Access, period_start: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            user_id,
            access: RwLock::new(access),
            period_start: RwLock::new(period_start),
            used_tokens: AtomicI64::new(0),
            spent_microdollars: AtomicI64::new(0),
        }
    }

    pub fn access(&self) -> Access {
        self.access
            .read()
            .map(|a| a.clone())
            .unwrap_or(Access::NoSubscription)
    }

    /// A new billing period starts the counters afresh (the caller then raises them to the
    /// database's totals for that period).
    fn set_access(&self, access: Access, period_start: chrono::DateTime<chrono::Utc>) {
        if let Ok(mut a) = self.access.write() {
            *a = access;
        }
        if let Ok(mut p) = self.period_start.write() {
            if *p != period_start {
                *p = period_start;
                self.used_tokens.store(0, Ordering::Relaxed);
                self.spent_microdollars.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Adds a served request's usage at once, so the next request sees it.
    pub fn add_usage(&self, tokens: i64, cost: i64) {
        self.used_tokens.fetch_add(tokens, Ordering::Relaxed);
        self.spent_microdollars.fetch_add(cost, Ordering::Relaxed);
    }

    /// Raises the counters to the database's totals: those include what other proxy
    /// instances served, so budgets hold across replicas (never lowered: ours may be unflushed).
    pub fn observe_totals(&self, tokens: i64, cost: i64) {
        self.used_tokens.fetch_max(tokens, Ordering::Relaxed);
        self.spent_microdollars.fetch_max(cost, Ordering::Relaxed);
    }

    pub fn spent(&self) -> i64 {
        self.spent_microdollars.load(Ordering::Relaxed)
    }

    /// Included tokens left this period (0 once the allowance is used up, or without a plan).
    pub fn tokens_remaining(&self) -> i64 {
        match self.access() {
            Access::Active { plan, .. } => {
                (plan.included_tokens() - self.used_tokens.load(Ordering::Relaxed)).max(0)
            }
            _ => 0,
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeyEntry {
    /// The API key's id, or the grant's id for an access token: usage is recorded under it.
    pub key_id: Uuid,
    pub user: Arc<UserState>,
    /// Unix seconds; `i64::MAX` for API keys.
    expires_at: i64,
}

impl KeyEntry {
    fn live(&self) -> bool {
        // Keys never expire: no clock read on their path.
        self.expires_at == i64::MAX || chrono::Utc::now().timestamp() < self.expires_at
    }
}

#[derive(Default)]
struct Maps {
    by_hash: HashMap<[u8; 32], KeyEntry>,
    users: HashMap<Uuid, Arc<UserState>>,
}

/// The in-memory key table.
pub struct KeyStore {
    maps: RwLock<Maps>,
    /// Changed (to a value no table has had) with every change to `maps`, while it is still
    /// locked for writing: what a thread remembers from before is not used (`recent`).
    stamp: AtomicU64,
    loaded: AtomicBool,
    /// Bounds the Postgres lookups that keys missing from the table cause (`find_or_load`).
    misses: governor::DefaultDirectRateLimiter,
}

/// Lookups per second for keys the table does not know: plenty for keys just created, too
/// few for a flood of made-up keys to load the database.
const MISS_LOOKUPS_PER_SECOND: NonZeroU32 = NonZeroU32::new(50).unwrap();

impl Default for KeyStore {
    fn default() -> Self {
        Self {
            maps: RwLock::default(),
            stamp: AtomicU64::new(recent::new_stamp()),
            loaded: AtomicBool::new(false),
            misses: governor::RateLimiter::direct(governor::Quota::per_second(
                MISS_LOOKUPS_PER_SECOND,
            )),
        }
    }
}

impl KeyStore {
    /// Like `find`, but a well-formed key the table does not know is looked up in Postgres
    /// before it is refused: a key created a moment ago works at once, before the NOTIFY that
    /// announces it arrives.
    pub async fn find_or_load(&self, pool: &sqlx::PgPool, presented: &str) -> Option<KeyEntry> {
        if let Some(entry) = self.find(presented) {
            return Some(entry);
        }
        let hash = domain::bearer_hash(presented)?;
        if self.misses.check().is_err() {
            return None;
        }
        let user_id = load::owner_of(pool, &hash.0).await.ok()??;
        let snapshot = load::snapshot(pool, Some(user_id)).await.ok()?;
        self.replace_user(user_id, snapshot);
        self.find(presented)
    }

    /// The entry for a presented key or access token, if it is an active one.
    pub fn find(&self, presented: &str) -> Option<KeyEntry> {
        if let Some(entry) = recent::get(presented, self.stamp.load(Ordering::Acquire)) {
            return entry.live().then_some(entry);
        }
        let hash = domain::bearer_hash(presented)?;
        let maps = self.maps.read().ok()?;
        // Read under the lock, which a change holds until it has changed the stamp too.
        let stamp = self.stamp.load(Ordering::Acquire);
        let (stored, entry) = maps.by_hash.get_key_value(&hash.0)?;
        // The map lookup found it by hash; confirm in constant time all the same.
        if !hash.matches(stored) {
            return None;
        }
        recent::remember(presented, stamp, entry);
        entry.live().then(|| entry.clone())
    }

    /// Called with `maps` locked for writing.
    fn changed(&self) {
        self.stamp.store(recent::new_stamp(), Ordering::Release);
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    pub fn users(&self) -> Vec<Arc<UserState>> {
        self.maps
            .read()
            .map(|m| m.users.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Replaces everything with a full snapshot, keeping the usage counters of known users.
    pub fn replace_all(&self, snapshot: load::Snapshot) {
        let Ok(mut maps) = self.maps.write() else {
            return;
        };
        let mut users = HashMap::new();
        for u in snapshot.users {
            let state = match maps.users.get(&u.user_id) {
                Some(existing) => {
                    existing.set_access(u.access, u.period_start);
                    existing.clone()
                }
                None => Arc::new(UserState::new(u.user_id, u.access, u.period_start)),
            };
            state.observe_totals(u.used_tokens, u.spent_microdollars);
            users.insert(u.user_id, state);
        }
        let mut by_hash = HashMap::with_capacity(snapshot.keys.len());
        for k in snapshot.keys {
            if let Some(user) = users.get(&k.user_id) {
                by_hash.insert(
                    k.hash,
                    KeyEntry {
                        key_id: k.key_id,
                        user: user.clone(),
                        expires_at: k.expires_at,
                    },
                );
            }
        }
        *maps = Maps { by_hash, users };
        self.changed();
        self.loaded.store(true, Ordering::Release);
    }

    /// Replaces one user's keys and access (after a NOTIFY naming them).
    pub fn replace_user(&self, user_id: Uuid, snapshot: load::Snapshot) {
        let Ok(mut maps) = self.maps.write() else {
            return;
        };
        // Still locked: no one reads the new stamp with the old maps.
        self.changed();
        maps.by_hash.retain(|_, e| e.user.user_id != user_id);
        let Some(u) = snapshot.users.into_iter().find(|u| u.user_id == user_id) else {
            maps.users.remove(&user_id);
            return;
        };
        let state = match maps.users.get(&user_id) {
            Some(existing) => {
                existing.set_access(u.access, u.period_start);
                existing.clone()
            }
            None => Arc::new(UserState::new(user_id, u.access, u.period_start)),
        };
        state.observe_totals(u.used_tokens, u.spent_microdollars);
        for k in snapshot.keys.into_iter().filter(|k| k.user_id == user_id) {
            maps.by_hash.insert(
                k.hash,
                KeyEntry {
                    key_id: k.key_id,
                    user: state.clone(),
                    expires_at: k.expires_at,
                },
            );
        }
        maps.users.insert(user_id, state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_new_period_resets_the_counters() {
        let active = Access::Active {
            plan: Plan::Basic,
            cap_microdollars: None,
        };
        let oct = chrono::Utc.with_ymd_and_hms(2026, 10, 1, 0, 0, 0).unwrap();
        let nov = chrono::Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
        let u = UserState::new(Uuid::nil(), active.clone(), oct);
        u.add_usage(1_000, 50);
        u.set_access(active.clone(), oct);
        assert_eq!(u.tokens_remaining(), 5_000_000 - 1_000);
        u.set_access(active, nov);
        assert_eq!((u.tokens_remaining(), u.spent()), (5_000_000, 0));
        u.observe_totals(10, 2);
        assert_eq!((u.tokens_remaining(), u.spent()), (5_000_000 - 10, 2));
    }

    /// A key this thread found (and so remembers, `recent`) is refused once the table no
    /// longer has it, whether the whole table or only its user was reloaded.
    #[test]
    fn a_remembered_key_is_refused_once_revoked() {
        let secret = domain::ApiKeySecret::generate();
        let presented = secret.expose();
        let hash = domain::bearer_hash(presented).unwrap().0;
        let (user_id, key_id) = (Uuid::new_v4(), Uuid::new_v4());
        let snapshot = |with_key: bool| load::Snapshot {
            keys: if with_key {
                vec![load::KeyRow {
                    key_id,
                    user_id,
                    hash,
                    expires_at: i64::MAX,
                }]
            } else {
                Vec::new()
            },
            users: vec![load::UserRow {
                user_id,
                access: Access::NoSubscription,
                period_start: chrono::Utc::now(),
                used_tokens: 0,
                spent_microdollars: 0,
            }],
        };
        let store = KeyStore::default();
        let other = KeyStore::default();
        store.replace_all(snapshot(true));
        for _ in 0..2 {
            assert_eq!(store.find(presented).unwrap().key_id, key_id);
        }
        // Another table never answers from what this one remembered.
        assert!(other.find(presented).is_none());
        store.replace_user(user_id, snapshot(false));
        assert!(store.find(presented).is_none());
        store.replace_all(snapshot(true));
        assert!(store.find(presented).is_some());
        store.replace_all(snapshot(false));
        assert!(store.find(presented).is_none());
    }
}
