//! A server's answer read whole, and what the server said as one line: the three error shapes
//! met on this path are OAuth's (RFC 6749 §5.2), the api's and the proxy's (OpenAI's).

use anyhow::{anyhow, Context, Result};
use reqwest::StatusCode;
use serde_json::Value;

pub struct Answer {
    pub status: StatusCode,
    pub body: String,
}

/// Sends the request and reads the whole body; `what` names the endpoint for the user.
pub async fn send(req: reqwest::RequestBuilder, what: &str) -> Result<Answer> {
    let res = req
        .send()
        .await
        .with_context(|| format!("cannot reach the {what}"))?;
    let status = res.status();
    let body = res
        .text()
        .await
        .with_context(|| format!("the {what} answered {status} but its body could not be read"))?;
    Ok(Answer { status, body })
}

impl Answer {
    /// The body as JSON when the status is a success, otherwise what the server said.
    pub fn json(&self) -> Result<Value> {
        if !self.status.is_success() {
            return Err(anyhow!(self.describe()));
        }
        serde_json::from_str(&self.body).map_err(|e| {
            anyhow!(
                "the server answered {} with a body that is not JSON ({e})",
                self.status
            )
        })
    }

    pub fn describe(&self) -> String {
        format!("the server answered {}: {}", self.status, said(&self.body))
    }
}

fn said(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        // OAuth: {"error": "invalid_grant", "error_description": "..."}
        if let Some(code) = text(&v["error"]) {
            return match text(&v["error_description"]) {
                Some(d) => format!("{code} ({d})"),
                None => code,
            };
        }
        // api {"error": {"code", "message"}} and OpenAI {"error": {"type", "code", "message"}}
        if let Some(message) = text(&v["error"]["message"]) {
            return match text(&v["error"]["code"]).or_else(|| text(&v["error"]["type"])) {
                Some(code) => format!("{code} ({message})"),
                None => message,
            };
        }
    }
    // Anything else, kept to one short line.
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        _ if line.is_empty() => "(empty body)".into(),
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.into(),
        }
    }

    #[test]
    fn each_error_shape_reads_as_one_line() {
        let cases = [
            (
                r#"{"error":"invalid_grant","error_description":"the code has expired"}"#,
                "400 Bad Request: invalid_grant (the code has expired)",
            ),
            (
                r#"{"error":{"code":"not_found","message":"you have no identity yet"}}"#,
                "400 Bad Request: not_found (you have no identity yet)",
            ),
            (
                r#"{"error":{"message":"out of tokens","type":"insufficient_quota","code":null}}"#,
                "400 Bad Request: insufficient_quota (out of tokens)",
            ),
            ("", "400 Bad Request: (empty body)"),
            (
                "<html>\n  Bad\n gateway</html>",
                "400 Bad Request: <html> Bad gateway</html>",
            ),
        ];
        for (body, says) in cases {
            assert_eq!(
                answer(400, body).describe(),
                format!("the server answered {says}")
            );
        }
        assert!(answer(502, &"x".repeat(500)).describe().ends_with('…'));
    }

    #[test]
    fn json_only_for_a_success() {
        assert_eq!(answer(200, r#"{"a":1}"#).json().unwrap()["a"], 1);
        let e = answer(401, r#"{"error":"invalid_token"}"#)
            .json()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the server answered 401 Unauthorized: invalid_token"
        );
        assert!(answer(200, "nope").json().is_err());
    }
}
