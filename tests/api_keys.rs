//! API keys: shown once, hashed at rest, revocable, rotatable, private to their owner.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::api::{expect_error, TestApi};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn a_key_is_shown_once_and_stored_only_as_a_hash() {
    let api = TestApi::start().await;
    let s = api.register("keys@example.com").await;
    let res = api
        .post("/v1/api-keys", Some(&s.access), json!({"name": "laptop"}))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("pk_live_") && key.len() == 8 + 43, "{key}");
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    let list: Value = api
        .get("/v1/api-keys", Some(&s.access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(
        !list.to_string().contains(key),
        "a list must never contain the key"
    );
    assert_eq!(list["data"][0]["name"], "laptop");
    assert!(list["data"][0]["last_used_at"].is_null());

    let stored: (Vec<u8>,) = sqlx::query_as("SELECT key_hash FROM api_keys")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert_eq!(stored.0.len(), 32);
    let dump: (String,) = sqlx::query_as("SELECT row_to_json(k)::text FROM api_keys k")
        .fetch_one(&api.db.pool)
        .await
        .unwrap();
    assert!(
        !dump.0.contains(&key[8..]),
        "plain key material in the database"
    );

    // The key authenticates, and its use shows up as last_used_at.
    let me: Value = api.get("/v1/me", Some(key)).await.json().await.unwrap();
    assert_eq!(me["authenticated_with"], "api_key");
    let list: Value = api
        .get("/v1/api-keys", Some(&s.access))
        .await
        .json()
        .await
        .unwrap();
    assert!(list["data"][0]["last_used_at"].is_string());

    // A body is optional; the name defaults; bad names are refused.
    let res = api
        .client
        .post(api.url("/v1/api-keys"))
        .bearer_auth(&s.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.json::<Value>().await.unwrap()["name"], "default");
    let bad = api
        .post(
            "/v1/api-keys",
            Some(&s.access),
            json!({"name": "x".repeat(65)}),
        )
        .await;
    assert_eq!(
        expect_error(bad, StatusCode::BAD_REQUEST).await["error"]["field"],
        "name"
    );
    let bad = api
        .post("/v1/api-keys", Some(&s.access), json!({"name": 3}))
        .await;
    expect_error(bad, StatusCode::BAD_REQUEST).await;
    api.stop().await;
}

#[tokio::test]
async fn revoked_and_rotated_keys_stop_working() {
    let api = TestApi::start().await;
    let s = api.register("rot@example.com").await;
    let (id, key) = api.create_key(&s.access, "ci").await;

    let rotated = api
        .post(
            &format!("/v1/api-keys/{id}/rotate"),
            Some(&s.access),
            json!({}),
        )
        .await;
    assert_eq!(rotated.status(), StatusCode::CREATED);
    let rotated: Value = rotated.json().await.unwrap();
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    assert_eq!(rotated["name"], "ci");
    expect_error(
        api.get("/v1/me", Some(&key)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        api.get("/v1/me", Some(&new_key)).await.status(),
        StatusCode::OK
    );
    // Rotating the old one again: it is gone.
    expect_error(
        api.post(
            &format!("/v1/api-keys/{id}/rotate"),
            Some(&s.access),
            json!({}),
        )
        .await,
        StatusCode::NOT_FOUND,
    )
    .await;

    let new_id = rotated["id"].as_str().unwrap();
    assert_eq!(
        api.delete(&format!("/v1/api-keys/{new_id}"), Some(&s.access))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    expect_error(
        api.get("/v1/me", Some(&new_key)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect_error(
        api.delete(&format!("/v1/api-keys/{new_id}"), Some(&s.access))
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    let list: Value = api
        .get("/v1/api-keys", Some(&s.access))
        .await
        .json()
        .await
        .unwrap();
    assert!(list["data"].as_array().unwrap().is_empty());

    // Well-formed but unknown keys, and garbage, are 401.
    let fake = format!("pk_live_{}", "A".repeat(43));
    expect_error(
        api.get("/v1/me", Some(&fake)).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    expect_error(
        api.get("/v1/me", Some("pk_live_short")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    api.stop().await;
}

#[tokio::test]
async fn another_users_key_is_indistinguishable_from_a_missing_one() {
    let api = TestApi::start().await;
    let alice = api.register("alice@example.com").await;
    let bob = api.register("bob@example.com").await;
    let (alice_key_id, alice_key) = api.create_key(&alice.access, "alice").await;

    let foreign = api
        .delete(&format!("/v1/api-keys/{alice_key_id}"), Some(&bob.access))
        .await;
    let foreign = expect_error(foreign, StatusCode::NOT_FOUND).await;
    let missing = api
        .delete(
            &format!("/v1/api-keys/{}", uuid::Uuid::new_v4()),
            Some(&bob.access),
        )
        .await;
    let missing = expect_error(missing, StatusCode::NOT_FOUND).await;
    assert_eq!(foreign, missing);
    let foreign_rotate = api
        .post(
            &format!("/v1/api-keys/{alice_key_id}/rotate"),
            Some(&bob.access),
            json!({}),
        )
        .await;
    expect_error(foreign_rotate, StatusCode::NOT_FOUND).await;
    // Bob's list does not show it, and Alice's key still works.
    let list: Value = api
        .get("/v1/api-keys", Some(&bob.access))
        .await
        .json()
        .await
        .unwrap();
    assert!(list["data"].as_array().unwrap().is_empty());
    assert_eq!(
        api.get("/v1/me", Some(&alice_key)).await.status(),
        StatusCode::OK
    );

    let bad_id = api
        .delete("/v1/api-keys/not-a-uuid", Some(&bob.access))
        .await;
    assert_eq!(
        expect_error(bad_id, StatusCode::BAD_REQUEST).await["error"]["field"],
        "id"
    );
    expect_error(
        api.get("/v1/api-keys", None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    api.stop().await;
}
