//! Two Dex identities ready for the communication endpoints, seeded as the provisioning saga
//! would: Workspace users created with the Google client, numbers ordered with the Telnyx
//! client, Signal registered with the code the sandbox texts, identity rows written with the
//! `db::identities` functions. The sandbox runs in-process, the api in-process against a fresh
//! database and pointed at the sandbox.

use super::api::{Session, TestApi};
use super::ports::free_port;
use super::sandbox::{next_webhook, start_receiver, start_sandbox, Received, TestSandbox};
use providers::google::NewUser;
use providers::signal::{verification_code, RegisterOptions};
use providers::telnyx::{verify_webhook, NumberSearch};
use tokio::sync::mpsc::UnboundedReceiver;
use uuid::Uuid;

pub struct Dex {
    pub session: Session,
    pub token: String,
    pub user_id: Uuid,
    pub identity_id: Uuid,
    pub email: String,
    pub number: String,
}

pub struct World {
    pub sb: TestSandbox,
    pub api: TestApi,
    pub a: Dex,
    pub b: Dex,
}

/// Where the api's Restate client points: a closed port (nothing in these tests needs it).
pub fn unreachable_restate() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// The api's provider settings, taken from the sandbox's (dev) configuration.
pub fn provider_env(sb: &TestSandbox) -> Vec<(String, String)> {
    let c = &sb.config;
    let public_key = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        c.telnyx.public_key.expect("dev Telnyx public key"),
    );
    vec![
        ("GOOGLE_API_BASE".into(), c.google.api_base.clone()),
        ("GOOGLE_TOKEN_URL".into(), c.google.token_url.clone()),
        ("GOOGLE_ADMIN_EMAIL".into(), c.google.admin_email.clone()),
        ("GOOGLE_DOMAIN".into(), c.google.domain.clone()),
        (
            "GOOGLE_SERVICE_ACCOUNT_JSON".into(),
            c.google.service_account_json.expose().to_owned(),
        ),
        ("TELNYX_API_BASE".into(), c.telnyx.api_base.clone()),
        (
            "TELNYX_API_KEY".into(),
            c.telnyx.api_key.expose().to_owned(),
        ),
        ("TELNYX_PUBLIC_KEY".into(), public_key),
        ("SIGNAL_CLI_URL".into(), c.signal_cli_url.clone()),
    ]
}

/// Starts the sandbox and the api, and seeds two active identities with mail, a number and
/// Signal. Inbound SMS then reach the api's `/webhooks/telnyx`.
pub async fn world() -> World {
    let (receiver, mut codes) = start_receiver().await;
    let sb = start_sandbox(&[("SANDBOX_WEBHOOK_BASE", &receiver)]).await;
    let restate = unreachable_restate();
    let mut env = provider_env(&sb);
    env.push(("RESTATE_INGRESS_URL".into(), restate));
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let api = TestApi::start_with(&env_refs).await;
    let a = seed(&sb, &api, &mut codes, "ada@example.com").await;
    let b = seed(&sb, &api, &mut codes, "bob@example.com").await;
    // As provisioning does: the messaging profile's webhooks go to the api.
    sb.telnyx()
        .set_profile_webhook(
            &sb.config.telnyx.messaging_profile_id,
            &api.url("/webhooks/telnyx"),
        )
        .await
        .unwrap();
    World { sb, api, a, b }
}

/// One user with an active identity.
pub async fn seed(
    sb: &TestSandbox,
    api: &TestApi,
    codes: &mut UnboundedReceiver<Received>,
    login: &str,
) -> Dex {
    let pool = &api.db.pool;
    let session = api.register(login).await;
    let user_id: Uuid = session.user_id.parse().unwrap();
    let identity = db::identities::begin_provisioning(pool, user_id, "basic")
        .await
        .unwrap()
        .identity;
    db::identities::set_status(
        pool,
        identity.id,
        db::status::IdentityStatus::Provisioning,
        None,
    )
    .await
    .unwrap();

    let google = sb.google();
    let email = google.workspace_address(&identity.short_id);
    let (user, _) = google
        .ensure_user(&NewUser {
            primary_email: email.clone(),
            given_name: "Dex".into(),
            family_name: identity.short_id.clone(),
            password: "correct-horse-battery-staple".into(),
            owner: Some(user_id.to_string()),
        })
        .await
        .unwrap();
    db::identities::set_workspace_user(pool, identity.id, Some(&email), Some(&user.id), None)
        .await
        .unwrap();

    let ordered = sb
        .telnyx()
        .ensure_number(
            &identity.id.to_string(),
            &NumberSearch::default(),
            Some(&sb.config.telnyx.messaging_profile_id),
        )
        .await
        .unwrap();
    let number = ordered.number.phone_number.clone();
    db::identities::set_number(pool, identity.id, Some(&number), Some(&ordered.number.id))
        .await
        .unwrap();

    db::identities::set_signal(pool, identity.id, db::status::SignalStatus::Pending, None)
        .await
        .unwrap();
    let signal = sb.signal();
    signal
        .register(&number, &RegisterOptions::default())
        .await
        .unwrap();
    let code = loop {
        let hook = next_webhook(codes, 5).await;
        let event = verify_webhook(
            &sb.config.telnyx.public_key.unwrap(),
            &hook.header("telnyx-signature-ed25519"),
            &hook.header("telnyx-timestamp"),
            &hook.body,
            chrono::Utc::now().timestamp(),
        )
        .unwrap();
        let sms = event.inbound_message().unwrap();
        if sms.to == number {
            break verification_code(&sms.text).expect("a Signal code");
        }
    };
    signal.verify(&number, &code, None).await.unwrap();
    db::identities::set_signal(
        pool,
        identity.id,
        db::status::SignalStatus::Registered,
        None,
    )
    .await
    .unwrap();
    db::identities::set_status(pool, identity.id, db::status::IdentityStatus::Active, None)
        .await
        .unwrap();

    Dex {
        token: session.access.clone(),
        session,
        user_id,
        identity_id: identity.id,
        email,
        number,
    }
}
