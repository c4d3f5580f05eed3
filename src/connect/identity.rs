//! `GET /v1/identity` with the access token: the addresses Dex learns it has. It is also how
//! this command checks whether a token still works.

use super::answer;
use anyhow::Result;
use serde_json::Value;

pub enum Seen {
    /// One line: email, phone, Signal status, status.
    Identity(String),
    /// 404: the token works but no identity exists yet; what the server said.
    NotYet(String),
    /// 401: the token does not work; what the server said.
    Refused(String),
}

pub async fn fetch(http: &reqwest::Client, api: &str, access_token: &str) -> Result<Seen> {
    let req = http
        .get(format!("{api}/v1/identity"))
        .bearer_auth(access_token);
    let answer = answer::send(req, "api").await?;
    Ok(match answer.status.as_u16() {
        401 => Seen::Refused(answer.describe()),
        404 => Seen::NotYet(answer.describe()),
        _ => Seen::Identity(summary(&answer.json()?)),
    })
}

fn summary(v: &Value) -> String {
    // An identity still being provisioned has empty fields; say so rather than print blanks.
    let text = |v: &Value| {
        v.as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("none yet")
            .to_owned()
    };
    let signal = match (
        v["signal"]["status"].as_str(),
        v["signal"]["registered"].as_bool(),
    ) {
        (Some(status), _) => status.to_owned(),
        (None, Some(true)) => "registered".to_owned(),
        (None, _) => "not registered".to_owned(),
    };
    format!(
        "email {}, phone {}, Signal {signal}, status {}",
        text(&v["email"]),
        text(&v["phone"]),
        text(&v["status"])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_identity_reads_as_one_line() {
        let active = json!({"email": "dex-a1b2c3d4@poindexter.ai", "phone": "+15550100",
                            "signal": {"registered": true, "status": "registered"}, "status": "active"});
        assert_eq!(
            summary(&active),
            "email dex-a1b2c3d4@poindexter.ai, phone +15550100, Signal registered, status active"
        );
        let provisioning = json!({"email": null, "phone": "", "signal": {"registered": false},
                                  "status": "provisioning"});
        assert_eq!(
            summary(&provisioning),
            "email none yet, phone none yet, Signal not registered, status provisioning"
        );
    }
}
