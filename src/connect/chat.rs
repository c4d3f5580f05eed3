//! One chat completion through the proxy with the access token: the AI access a connected
//! Dex gets.

use super::answer;
use anyhow::{anyhow, Result};
use serde_json::{json, Value};

pub const MODEL: &str = "gpt-4o-mini";

pub struct Reply {
    /// The assistant's text on one line.
    pub text: String,
    pub usage: String,
}

pub async fn hello(http: &reqwest::Client, proxy: &str, access_token: &str) -> Result<Reply> {
    let body = json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "Say hello to Dex"}],
    });
    let req = http
        .post(format!("{proxy}/v1/chat/completions"))
        .bearer_auth(access_token)
        .json(&body);
    reply_from(&answer::send(req, "AI proxy").await?.json()?)
}

fn reply_from(v: &Value) -> Result<Reply> {
    let text = v["choices"][0]["message"]["content"]
        .as_str()
        .ok_or_else(|| anyhow!("the completion has no choices[0].message.content"))?;
    // One line, so that a reply cannot pass for one of this command's own lines.
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let count = |name: &str| v["usage"][name].as_u64();
    let usage = match (
        count("prompt_tokens"),
        count("completion_tokens"),
        count("total_tokens"),
    ) {
        (Some(p), Some(c), total) => {
            format!(
                "{p} prompt + {c} completion = {} tokens",
                total.unwrap_or(p + c)
            )
        }
        _ => "not reported".to_owned(),
    };
    Ok(Reply { text, usage })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_and_its_usage() {
        let v = json!({"choices": [{"message": {"role": "assistant", "content": "Hello,\n\nDex!"}}],
                       "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}});
        let r = reply_from(&v).unwrap();
        assert_eq!(r.text, "Hello, Dex!");
        assert_eq!(r.usage, "11 prompt + 4 completion = 15 tokens");

        let bare = json!({"choices": [{"message": {"content": "Hi"}}]});
        assert_eq!(reply_from(&bare).unwrap().usage, "not reported");
        assert!(reply_from(&json!({"choices": []})).is_err());
    }
}
