//! Identities cannot collide: two users whose ids share the tail the short id is cut from
//! both get an identity and a Workspace address of their own, and a retry of either finds
//! its own address again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::stack::Stack;
use serde_json::json;
use std::time::Duration;

/// A user id that shares its last 10 hex digits (the first short id) with `other`.
fn colliding_with(other: uuid::Uuid) -> uuid::Uuid {
    let mine = uuid::Uuid::now_v7().simple().to_string();
    let theirs = other.simple().to_string();
    let id = format!("{}{}", &mine[..22], &theirs[22..]);
    assert_ne!(id, theirs);
    uuid::Uuid::parse_str(&id).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn users_whose_short_ids_collide_each_get_their_own_identity_and_address() {
    let stack = Stack::start(&[]).await;
    let (first, a) = stack
        .provisioned("first@example.com", &["active"], Duration::from_secs(30))
        .await;

    let second_id = colliding_with(first);
    db::users::insert(
        &stack.db.pool,
        second_id,
        &domain::Email::parse("second@example.com").unwrap(),
        "x",
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        db::identities::short_id_for(second_id),
        a.short_id,
        "the test must force a collision"
    );
    // The Workspace user creation fails once, so the first generation fails and is retried.
    stack
        .sandbox
        .fault(json!({"provider": "google", "route": "/admin/directory/v1/users", "method": "POST", "kind": "status", "status": 400, "count": 1}))
        .await;
    stack.provision(second_id).await;
    let failed = stack
        .wait_status(second_id, &["failed"], Duration::from_secs(30))
        .await;
    assert_ne!(failed.short_id, a.short_id);
    assert_eq!(
        failed.short_id,
        db::identities::short_id_candidates(second_id)[1]
    );

    let res = stack
        .admin_post(
            &format!("/v1/admin/identities/{}/retry", failed.id),
            json!({}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let b = stack
        .wait_status(second_id, &["active"], Duration::from_secs(30))
        .await;
    assert_eq!(b.generation, failed.generation + 1);
    assert_eq!(b.short_id, failed.short_id, "a retry keeps its short id");
    let (email_a, email_b) = (a.email.clone().unwrap(), b.email.clone().unwrap());
    assert_ne!(email_a, email_b);
    assert!(email_b.contains(&b.short_id), "{email_b}");

    // Each user owns exactly one Workspace user, at its own address.
    let (users_a, _) = stack.leftovers(first).await;
    let (users_b, numbers_b) = stack.leftovers(second_id).await;
    assert_eq!(users_a.len(), 1, "{users_a:?}");
    assert_eq!(users_a[0]["email"], email_a.as_str());
    assert_eq!(users_b.len(), 1, "{users_b:?}");
    assert_eq!(users_b[0]["email"], email_b.as_str());
    assert_eq!(numbers_b.len(), 1, "{numbers_b:?}");
    stack.stop().await;
}
