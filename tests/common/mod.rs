//! Shared test support: a freshly migrated database per test, free ports, env builders, and
//! the provider sandbox in-process.
#![allow(dead_code)]

pub mod api;
pub mod cluster;
pub mod comms;
pub mod db;
pub mod dev;
pub mod journal;
pub mod ports;
pub mod process;
pub mod restate;
pub mod sandbox;
pub mod stack;

/// Sends `req` and reads its answer as JSON.
pub async fn json_of(req: reqwest::RequestBuilder) -> serde_json::Value {
    req.send().await.unwrap().json().await.unwrap()
}
