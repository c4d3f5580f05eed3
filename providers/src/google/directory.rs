//! Admin SDK Directory API users (`/admin/directory/v1/users`): insert, get, update (suspend,
//! unsuspend) and delete, called as the Workspace admin.

use super::{GoogleClient, GoogleError};
use crate::http::Repeat;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// `externalIds[].customType` under which the owning Poindexter user id is recorded on the
/// Workspace user, so an audit can tell whose account it is.
pub const OWNER_ID_TYPE: &str = "poindexter_user";

/// A Workspace user to create.
#[derive(Clone)]
pub struct NewUser {
    /// Usually `GoogleClient::workspace_address(short_id)`.
    pub primary_email: String,
    pub given_name: String,
    pub family_name: String,
    /// 8 to 100 characters; sent once, never logged.
    pub password: String,
    /// The Poindexter user this account belongs to.
    pub owner: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("primary_email", &self.primary_email)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// The fields of a Directory `User` resource this service reads.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub primary_email: String,
    #[serde(default)]
    pub name: UserName,
    #[serde(default)]
    pub suspended: bool,
    #[serde(default)]
    pub creation_time: Option<String>,
    #[serde(default)]
    pub external_ids: Vec<ExternalId>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UserName {
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub family_name: String,
    #[serde(default)]
    pub full_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalId {
    pub value: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub custom_type: Option<String>,
}

impl User {
    /// The Poindexter user recorded on this account, if any.
    pub fn owner(&self) -> Option<&str> {
        self.external_ids
            .iter()
            .find(|e| e.custom_type.as_deref() == Some(OWNER_ID_TYPE))
            .map(|e| e.value.as_str())
    }
}

const USERS: [&str; 4] = ["admin", "directory", "v1", "users"];

impl GoogleClient {
    /// Creates the user. A 409 (the address is taken, e.g. by an earlier attempt whose answer
    /// was lost) is `GoogleError::AlreadyExists`; see [`GoogleClient::ensure_user`].
    pub async fn create_user(&self, user: &NewUser) -> Result<User, GoogleError> {
        let mut body = json!({
            "primaryEmail": user.primary_email,
            "name": {"givenName": user.given_name, "familyName": user.family_name},
            "password": user.password,
            "changePasswordAtNextLogin": false,
        });
        if let Some(owner) = &user.owner {
            body["externalIds"] =
                json!([{"type": "custom", "customType": OWNER_ID_TYPE, "value": owner}]);
        }
        // Safe to repeat: the address is the identity of the user, so a second insert can
        // only answer 409, never create a twin.
        self.call_json(
            self.as_admin(),
            Method::POST,
            &USERS,
            &[],
            Some(&body),
            Repeat::Safe,
        )
        .await
    }

    /// Creates the user or, if its address exists already, returns the existing one; the
    /// flag says whether this call created it. An existing user that belongs to another owner
    /// is an `AlreadyExists` error, never adopted.
    pub async fn ensure_user(&self, user: &NewUser) -> Result<(User, bool), GoogleError> {
        match self.create_user(user).await {
            Ok(created) => Ok((created, true)),
            Err(GoogleError::AlreadyExists(msg)) => {
                let existing = self.get_user(&user.primary_email).await?;
                match (&user.owner, existing.owner()) {
                    (Some(want), Some(have)) if want != have => Err(GoogleError::AlreadyExists(
                        format!("{msg} (belongs to another owner)"),
                    )),
                    _ => Ok((existing, false)),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// `GoogleError::NotFound` when there is no such user.
    pub async fn get_user(&self, email: &str) -> Result<User, GoogleError> {
        self.call_json(
            self.as_admin(),
            Method::GET,
            &[&USERS[..], &[email]].concat(),
            &[],
            None,
            Repeat::Safe,
        )
        .await
    }

    pub async fn suspend_user(&self, email: &str) -> Result<User, GoogleError> {
        self.set_suspended(email, true).await
    }

    pub async fn unsuspend_user(&self, email: &str) -> Result<User, GoogleError> {
        self.set_suspended(email, false).await
    }

    /// `users.update` supports patch semantics: only `suspended` is sent.
    async fn set_suspended(&self, email: &str, suspended: bool) -> Result<User, GoogleError> {
        self.call_json(
            self.as_admin(),
            Method::PUT,
            &[&USERS[..], &[email]].concat(),
            &[],
            Some(&json!({ "suspended": suspended })),
            Repeat::Safe,
        )
        .await
    }

    /// Deletes the user. `GoogleError::NotFound` when it does not exist (a compensation or a
    /// repeated deprovisioning can count that as done).
    pub async fn delete_user(&self, email: &str) -> Result<(), GoogleError> {
        self.call(
            self.as_admin(),
            Method::DELETE,
            &[&USERS[..], &[email]].concat(),
            &[],
            None,
            Repeat::Safe,
        )
        .await
        .map(drop)
    }
}
