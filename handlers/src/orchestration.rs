//! Hands long-running work to Restate through its ingress. The api never runs a multi-step
//! process itself: it starts (or signals) a durable workflow and returns.
//!
//! Every start carries an idempotency key (for webhooks, the provider's event id), so a trigger
//! that repeats changes the world once.

use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;
use workflows::contract::{self, Invocation};

#[derive(Clone)]
pub struct Restate {
    client: reqwest::Client,
    ingress: String,
    admin: String,
    pool: sqlx::PgPool,
}

#[derive(Debug, thiserror::Error)]
pub enum OrchestrationError {
    #[error("Restate is unreachable: {0}")]
    Unreachable(String),
    #[error("Restate refused the request ({status}): {body}")]
    Refused { status: u16, body: String },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl Restate {
    pub fn new(ingress: &str, admin: &str, pool: sqlx::PgPool) -> Self {
        let client = reqwest::Client::builder()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            client,
            ingress: ingress.trim_end_matches('/').to_owned(),
            admin: admin.trim_end_matches('/').to_owned(),
            pool,
        }
    }

    /// Fire-and-forget invocation (`…/send`); returns the invocation id.
    pub async fn send(
        &self,
        invocation: &Invocation,
        idempotency_key: Option<&str>,
    ) -> Result<String, OrchestrationError> {
        let path = format!("{}/send", invocation.path);
        let body = invocation.body.clone().unwrap_or(Value::Null);
        let res = self.post(&path, idempotency_key, &body).await?;
        Ok(res["invocationId"].as_str().unwrap_or_default().to_owned())
    }

    /// Rows of Restate's introspection SQL (`POST {admin}/query`).
    pub async fn query(&self, sql: &str) -> Result<Vec<Value>, OrchestrationError> {
        let res = self
            .client
            .post(format!("{}/query", self.admin))
            .header("accept", "application/json")
            .json(&json!({ "query": sql }))
            .send()
            .await
            .map_err(|e| OrchestrationError::Unreachable(e.to_string()))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(OrchestrationError::Refused {
                status: status.as_u16(),
                body: text,
            });
        }
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(v["rows"].as_array().cloned().unwrap_or_default())
    }

    /// Link to an invocation in the Restate UI.
    pub fn ui_link(&self, invocation_id: &str) -> String {
        format!("{}/ui/invocations/{invocation_id}", self.admin)
    }

    /// Request/response invocation, waiting for the handler's result.
    pub async fn call(
        &self,
        invocation: &Invocation,
        idempotency_key: Option<&str>,
    ) -> Result<Value, OrchestrationError> {
        let body = invocation.body.clone().unwrap_or(Value::Null);
        self.post(&invocation.path, idempotency_key, &body).await
    }

    async fn post(
        &self,
        path: &str,
        idempotency_key: Option<&str>,
        body: &Value,
    ) -> Result<Value, OrchestrationError> {
        let mut req =
            self.client
                .post(format!("{}/{}", self.ingress, path.trim_start_matches('/')));
        // Handlers without input refuse any body; `null` means "send none".
        if !body.is_null() {
            req = req.json(body);
        }
        if let Some(k) = idempotency_key {
            req = req.header("idempotency-key", k);
        }
        let res = req
            .send()
            .await
            .map_err(|e| OrchestrationError::Unreachable(e.to_string()))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(OrchestrationError::Refused {
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Starts provisioning the user's identity on `plan`. The workflow key is the identity and
    /// its generation, so started twice it provisions once; a failed or deleted identity starts
    /// a new generation. Returns the identity as it stands.
    pub async fn start_provisioning(
        &self,
        user_id: Uuid,
        plan: domain::Plan,
        idempotency_key: &str,
    ) -> Result<db::identities::Identity, OrchestrationError> {
        let begun = db::identities::begin_provisioning(&self.pool, user_id, plan.as_str()).await?;
        tracing::info!(%user_id, trigger = idempotency_key, fresh = begun.fresh, "provisioning requested");
        let identity = begun.identity;
        let key = workflow_key(&identity);
        let req = contract::ProvisionRequest {
            identity_id: identity.id,
            user_id,
            plan,
        };
        // A workflow key runs once; Restate refuses an idempotency key on top of it.
        self.send(&contract::provision(&req, identity.generation), None)
            .await?;
        if identity.workflow_id.as_deref() != Some(key.as_str()) {
            db::identities::set_workflow(&self.pool, identity.id, &key).await?;
        }
        Ok(identity)
    }

    /// Stops AI access and communication and suspends the Workspace user.
    pub async fn suspend(
        &self,
        user_id: Uuid,
        idempotency_key: &str,
    ) -> Result<String, OrchestrationError> {
        self.send(&contract::suspend(user_id), Some(idempotency_key))
            .await
    }

    /// Exactly reverses `suspend`.
    pub async fn resume(
        &self,
        user_id: Uuid,
        idempotency_key: &str,
    ) -> Result<String, OrchestrationError> {
        self.send(&contract::resume(user_id), Some(idempotency_key))
            .await
    }

    /// Revokes access and removes every provider resource of the user's identity.
    pub async fn deprovision(
        &self,
        user_id: Uuid,
        idempotency_key: &str,
    ) -> Result<String, OrchestrationError> {
        match db::identities::find_by_user(&self.pool, user_id).await? {
            Some(identity) => self.deprovision_identity(&identity, idempotency_key).await,
            None => Ok(String::new()),
        }
    }

    /// Deprovisions this generation of the identity; started twice, it runs once.
    pub async fn deprovision_identity(
        &self,
        identity: &db::identities::Identity,
        idempotency_key: &str,
    ) -> Result<String, OrchestrationError> {
        tracing::info!(identity_id = %identity.id, trigger = idempotency_key, "deprovisioning requested");
        let invocation = contract::deprovision(identity.id, identity.generation);
        self.send(&invocation, None).await
    }
}

/// `ProvisionIdentity` key of the identity's current generation.
pub fn workflow_key(identity: &db::identities::Identity) -> String {
    contract::identity_key(identity.id, identity.generation)
}

impl OrchestrationError {
    /// The handler's own message when Restate delivered the call and the handler refused it
    /// (a terminal error), as opposed to Restate being unreachable.
    pub fn refusal(&self) -> Option<String> {
        match self {
            Self::Refused { body, .. } => {
                let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
                Some(v["message"].as_str().unwrap_or(body).to_owned())
            }
            _ => None,
        }
    }
}

impl From<OrchestrationError> for crate::error::ApiError {
    fn from(e: OrchestrationError) -> Self {
        tracing::error!(error = %e, "handing work to Restate failed");
        crate::error::ApiError::Unavailable("could not schedule the work; retry shortly".into())
    }
}
