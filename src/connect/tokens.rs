//! The token endpoint for a public client (RFC 6749 §4.1.3 and §6, PKCE's code_verifier) and
//! revocation (RFC 7009). Tokens are never printed: this type has no Debug or Display.

use super::answer;
use anyhow::{anyhow, Result};
use serde_json::Value;

pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub expires_in: Option<u64>,
}

pub struct TokenClient<'a> {
    pub http: &'a reqwest::Client,
    pub token_endpoint: &'a str,
    pub client_id: &'a str,
}

impl TokenClient<'_> {
    pub async fn exchange(&self, code: &str, redirect_uri: &str, verifier: &str) -> Result<Tokens> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", self.client_id),
            ("code_verifier", verifier),
        ];
        let v = self.post(&form).await?;
        Tokens::from_json(&v, None)
    }

    /// The server rotates refresh tokens: `current` is dead once this succeeds.
    pub async fn refresh(&self, current: &str) -> Result<Tokens> {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", current),
            ("client_id", self.client_id),
        ];
        let v = self.post(&form).await?;
        Tokens::from_json(&v, Some(current))
    }

    /// Revoking either token ends the whole grant on this server.
    pub async fn revoke(&self, revocation_endpoint: &str, refresh: &str) -> Result<()> {
        let form = [
            ("token", refresh),
            ("token_type_hint", "refresh_token"),
            ("client_id", self.client_id),
        ];
        let req = self.http.post(revocation_endpoint).form(&form);
        let answer = answer::send(req, "revocation endpoint").await?;
        if !answer.status.is_success() {
            return Err(anyhow!(answer.describe()));
        }
        Ok(())
    }

    async fn post(&self, form: &[(&str, &str)]) -> Result<Value> {
        let req = self.http.post(self.token_endpoint).form(form);
        answer::send(req, "token endpoint").await?.json()
    }
}

impl Tokens {
    /// RFC 6749 §6 lets a refresh answer leave out the refresh token, meaning "keep the one
    /// you have"; `previous` is that one.
    fn from_json(v: &Value, previous: Option<&str>) -> Result<Self> {
        let token_type = v["token_type"].as_str().unwrap_or_default();
        if !token_type.eq_ignore_ascii_case("bearer") {
            return Err(anyhow!(
                "the token answer's token_type is `{token_type}`, not Bearer"
            ));
        }
        let access = v["access_token"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow!("the token answer has no access_token"))?;
        let refresh = v["refresh_token"]
            .as_str()
            .filter(|s| !s.is_empty())
            .or(previous)
            .ok_or_else(|| anyhow!("the token answer has no refresh_token"))?;
        Ok(Self {
            access: access.to_owned(),
            refresh: refresh.to_owned(),
            expires_in: v["expires_in"].as_u64(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_token_answer_needs_a_bearer_access_token_and_a_refresh_token() {
        let full = json!({"access_token": "a", "token_type": "Bearer", "expires_in": 3600,
                          "refresh_token": "r", "scope": "dex"});
        let t = Tokens::from_json(&full, None).unwrap();
        assert_eq!(
            (t.access.as_str(), t.refresh.as_str(), t.expires_in),
            ("a", "r", Some(3600))
        );

        let kept = json!({"access_token": "a2", "token_type": "bearer"});
        let t = Tokens::from_json(&kept, Some("r1")).unwrap();
        assert_eq!((t.refresh.as_str(), t.expires_in), ("r1", None));
        let e = Tokens::from_json(&kept, None).err().unwrap();
        assert_eq!(e.to_string(), "the token answer has no refresh_token");

        let mac = json!({"access_token": "a", "token_type": "mac", "refresh_token": "r"});
        assert!(Tokens::from_json(&mac, None).is_err());
    }
}
