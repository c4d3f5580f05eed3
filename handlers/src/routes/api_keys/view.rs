//! What the API shows of a key. Only `NewApiKey` ever contains the key itself.

use chrono::{DateTime, Utc};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(serde::Serialize, ToSchema)]
pub struct ApiKeyView {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// Updated within seconds of use.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<db::api_keys::ApiKey> for ApiKeyView {
    fn from(k: db::api_keys::ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        }
    }
}

#[derive(serde::Serialize, ToSchema)]
pub struct NewApiKey {
    pub id: Uuid,
    /// The full key. It is shown only in this response: store it now.
    pub key: String,
    pub prefix: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl NewApiKey {
    pub fn new(k: db::api_keys::ApiKey, secret: &domain::ApiKeySecret) -> Self {
        Self {
            id: k.id,
            key: secret.expose().to_owned(),
            prefix: k.prefix,
            name: k.name,
            created_at: k.created_at,
        }
    }
}
