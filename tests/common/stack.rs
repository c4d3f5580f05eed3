//! The whole stack as separate parts, all real: a fresh database, the sandbox (in-process;
//! every provider, Stripe included, configured with the test's keys), optionally
//! restate-server and the `poindexter workflows` process (child processes), and the api
//! (in-process), wired to each other on free ports. The saga, Signal and billing tests all
//! start it; each adds helpers of its own in an `impl Stack` block.
#![allow(dead_code)]

use super::api::{api_env, serve_api, ApiServer, ADMIN_TOKEN};
use super::db::TestDb;
use super::ports::free_port;
use super::process::{Proc, Started};
use super::restate::Restate;
use super::sandbox::{start_sandbox, TestSandbox};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub const WEBHOOK_SECRET: &str = "whsec_test_billing_0123456789";
pub const STRIPE_KEY: &str = "sk_test_billing_0123456789";
pub const PRICE_BASIC: &str = "price_basic_sandbox";
pub const PRICE_PRO: &str = "price_pro_sandbox";

pub struct Stack {
    pub db: TestDb,
    pub sandbox: TestSandbox,
    pub restate: Option<Restate>,
    pub workflows: Option<Proc>,
    pub workflows_port: u16,
    /// Once the workflows process has served, Restate may call its port: it keeps it.
    workflows_served: bool,
    pub env: HashMap<String, String>,
    pub api: String,
    pub http: reqwest::Client,
    api_server: ApiServer,
}

impl Stack {
    /// With Restate and the workflows process; `extra` overrides settings (e.g. shorter
    /// timeouts) for the workflows process and api.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        Self::start_with(extra, None, true).await
    }

    /// Like `start`, but the sandbox sends its webhooks to `webhook_base` (a test relay) instead
    /// of the api, so a test decides when, and how often, each one arrives.
    pub async fn start_with_webhooks(extra: &[(&str, &str)], webhook_base: Option<&str>) -> Self {
        Self::start_with(extra, webhook_base, true).await
    }

    /// Without `restate`, the api's Restate ingress is a port nobody listens on (never a
    /// Restate some other process runs on the default port), and no workflows process runs.
    pub async fn start_with(
        extra: &[(&str, &str)],
        webhook_base: Option<&str>,
        restate: bool,
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn")
            .try_init();
        let db = TestDb::new().await;
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = format!("http://{}", api_listener.local_addr().unwrap());
        let hooks = webhook_base.unwrap_or(&api).to_owned();
        let stripe = [
            ("STRIPE_SECRET_KEY", STRIPE_KEY),
            ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("STRIPE_PRICE_BASIC", PRICE_BASIC),
            ("STRIPE_PRICE_PRO", PRICE_PRO),
        ];
        let mut sandbox_env = vec![("SANDBOX_WEBHOOK_BASE", hooks.as_str())];
        sandbox_env.extend(stripe);
        let sandbox = start_sandbox(&sandbox_env).await;
        let restate = if restate {
            Some(Restate::start().await)
        } else {
            None
        };
        let workflows_port = free_port();

        let mut env = api_env(&db.url);
        let sandbox_addr = sandbox.url.trim_start_matches("http://").to_owned();
        env.insert("SANDBOX_ADDR".into(), sandbox_addr);
        // Telnyx's messaging profile is pointed at PUBLIC_BASE_URL/webhooks/telnyx.
        env.insert("PUBLIC_BASE_URL".into(), hooks.clone());
        env.insert("SANDBOX_WEBHOOK_BASE".into(), hooks.clone());
        env.insert("STRIPE_API_BASE".into(), format!("{}/stripe", sandbox.url));
        for (k, v) in stripe {
            env.insert(k.into(), v.into());
        }
        let (ingress, admin) = match &restate {
            Some(r) => (r.ingress.clone(), r.admin.clone()),
            None => (
                format!("http://127.0.0.1:{}", free_port()),
                format!("http://127.0.0.1:{}", free_port()),
            ),
        };
        env.insert("RESTATE_INGRESS_URL".into(), ingress);
        env.insert("RESTATE_ADMIN_URL".into(), admin);
        env.insert(
            "WORKFLOWS_ADDR".into(),
            format!("127.0.0.1:{workflows_port}"),
        );
        for (k, v) in [
            ("SIGNAL_CODE_TIMEOUT_SECS", "10"),
            ("SIGNAL_BACKOFF_MS", "200"),
            ("DEPROVISION_RETENTION_SECS", "1"),
            ("PROVIDER_TIMEOUT_MS", "1500"),
        ] {
            env.insert(k.into(), v.into());
        }
        for (k, v) in extra {
            env.insert(k.to_string(), v.to_string());
        }
        for d in config::apply_dev_defaults(&env) {
            env.entry(d.name.to_string()).or_insert(d.value);
        }

        let api_server = serve_api(api_listener, &env).await;
        let mut stack = Self {
            db,
            sandbox,
            restate,
            workflows: None,
            workflows_port,
            workflows_served: false,
            env,
            api,
            http: reqwest::Client::new(),
            api_server,
        };
        if stack.restate.is_some() {
            stack.start_workflows().await;
            // Its port, which the start may have changed.
            let uri = format!("http://127.0.0.1:{}", stack.workflows_port);
            stack.restate().register(&uri).await;
        }
        stack
    }

    /// The stack's restate-server (started with Restate).
    pub fn restate(&self) -> &Restate {
        self.restate.as_ref().expect("stack started with Restate")
    }

    pub fn restate_mut(&mut self) -> &mut Restate {
        self.restate.as_mut().expect("stack started with Restate")
    }

    /// Starts the workflows process. Its first start takes another free port if this one was
    /// taken before the process could bind it (see `Restate::start`); a later one keeps it.
    pub async fn start_workflows(&mut self) {
        for _ in 0..5 {
            let mut workflows = Proc::poindexter("workflows", &self.env);
            let health = format!("http://127.0.0.1:{}/healthz", self.workflows_port);
            match workflows
                .wait_started(&health, Duration::from_secs(30))
                .await
            {
                Started::Healthy => {
                    self.workflows = Some(workflows);
                    self.workflows_served = true;
                    return;
                }
                Started::Exited(why)
                    if why.contains("Address in use") && !self.workflows_served =>
                {
                    self.workflows_port = free_port();
                    let addr = format!("127.0.0.1:{}", self.workflows_port);
                    self.env.insert("WORKFLOWS_ADDR".into(), addr);
                }
                Started::Exited(why) => panic!("{why}"),
            }
        }
        panic!("workflows: every port tried was taken before it could bind it (5 tries)");
    }

    pub fn kill_workflows(&mut self) {
        if let Some(mut p) = self.workflows.take() {
            p.kill9();
        }
    }

    pub async fn stop(mut self) {
        self.kill_workflows();
        let Self {
            db,
            api_server,
            restate,
            ..
        } = self;
        drop(api_server);
        drop(restate);
        db.drop().await;
    }

    /// Registers a user straight in the database (accounts are tested elsewhere).
    pub async fn user(&self, email: &str) -> uuid::Uuid {
        let id = uuid::Uuid::now_v7();
        db::users::insert(
            &self.db.pool,
            id,
            &domain::Email::parse(email).unwrap(),
            "x",
            None,
        )
        .await
        .unwrap();
        id
    }

    pub async fn admin_post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(format!("{}{}", self.api, path))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn provision(&self, user: uuid::Uuid) -> Value {
        let res = self
            .admin_post(
                &format!("/v1/admin/provision/{user}"),
                json!({"plan": "basic"}),
            )
            .await;
        assert_eq!(
            res.status(),
            202,
            "{}",
            res.text().await.unwrap_or_default()
        );
        res.json().await.unwrap()
    }

    pub async fn identity(&self, user: uuid::Uuid) -> db::identities::Identity {
        db::identities::find_by_user(&self.db.pool, user)
            .await
            .unwrap()
            .expect("identity")
    }

    /// A user made and provisioned, once the identity's status is one of `want`: how most
    /// saga tests begin.
    pub async fn provisioned(
        &self,
        email: &str,
        want: &[&str],
        limit: Duration,
    ) -> (uuid::Uuid, db::identities::Identity) {
        let user = self.user(email).await;
        self.provision(user).await;
        (user, self.wait_status(user, want, limit).await)
    }

    /// Waits until the identity's status is one of `want`.
    pub async fn wait_status(
        &self,
        user: uuid::Uuid,
        want: &[&str],
        limit: Duration,
    ) -> db::identities::Identity {
        let deadline = Instant::now() + limit;
        loop {
            let i = self.identity(user).await;
            if want.contains(&i.status.as_str()) {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "identity stuck at {} ({:?}); wanted {want:?}",
                i.status,
                i.failure_reason
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_signal(
        &self,
        user: uuid::Uuid,
        want: &str,
        limit: Duration,
    ) -> db::identities::Identity {
        let deadline = Instant::now() + limit;
        loop {
            let i = self.identity(user).await;
            if i.signal_status == want {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "signal stuck at {} ({:?}); wanted {want}",
                i.signal_status,
                i.signal_failure_reason
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until Restate reports `service/key/run` in `status` (`sys_invocation.status`:
    /// running, backing-off, suspended, completed...).
    pub async fn wait_invocation_status(&self, service: &str, key: &str, status: &str) {
        let sql = format!(
            "SELECT status FROM sys_invocation WHERE target_service_name = '{service}' \
             AND target_service_key = '{key}' AND target_handler_name = 'run'"
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = self.restate().query(&sql).await;
            if rows.iter().any(|r| r["status"] == status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{service}/{key}/run never {status}: {rows:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The audit entries `action` holds whose detail contains `detail`, once there is at least
    /// one (30 s at most). A saga writes its closing audit entry just after the identity's
    /// terminal status, so a test that saw the status waits for the entry.
    pub async fn wait_audit(&self, action: &str, detail: Value) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows: Vec<(Value,)> = sqlx::query_as(
                "SELECT detail FROM audit_log WHERE action = $1 AND detail @> $2 ORDER BY id",
            )
            .bind(action)
            .bind(&detail)
            .fetch_all(&self.db.pool)
            .await
            .unwrap();
            if !rows.is_empty() {
                return rows.into_iter().map(|(d,)| d).collect();
            }
            assert!(
                Instant::now() < deadline,
                "no {action} audit entry with {detail}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Hands a webhook the relay caught to the api, byte for byte.
    pub async fn forward(
        &self,
        hook: &super::sandbox::Received,
        path: &str,
    ) -> reqwest::StatusCode {
        let mut req = self
            .http
            .post(format!("{}{path}", self.api))
            .body(hook.body.clone());
        for (name, value) in hook.headers.iter() {
            if name.as_str().starts_with("telnyx-")
                || name.as_str().starts_with("stripe-")
                || name == "content-type"
            {
                req = req.header(name, value);
            }
        }
        req.send().await.unwrap().status()
    }

    /// `POST /v1/admin/identities/{id}/deprovision`; its status.
    pub async fn deprovision(&self, identity: uuid::Uuid) -> reqwest::StatusCode {
        self.admin_post(
            &format!("/v1/admin/identities/{identity}/deprovision"),
            json!({}),
        )
        .await
        .status()
    }

    /// Workspace users and numbers alive at the sandbox that belong to `user`.
    pub async fn leftovers(&self, user: uuid::Uuid) -> (Vec<Value>, Vec<Value>) {
        let r = self.sandbox.resources().await;
        let owner = user.to_string();
        let users: Vec<Value> = r["google"]["users"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|u| u["owner"] == owner.as_str())
            .cloned()
            .collect();
        let identity = db::identities::find_by_user(&self.db.pool, user)
            .await
            .unwrap();
        let numbers: Vec<Value> = r["telnyx"]["numbers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| {
                let o = n["owner"].as_str().unwrap_or_default();
                identity
                    .as_ref()
                    .is_some_and(|i| o.starts_with(&i.id.to_string()))
            })
            .cloned()
            .collect();
        (users, numbers)
    }
}
