//! An OpenAI chat completions request as an Anthropic messages request: system and developer
//! messages become `system`; user/assistant turns become messages (consecutive turns of one
//! role are merged, as Anthropic wants alternation); assistant `tool_calls` become `tool_use`
//! blocks and `tool` messages `tool_result` blocks; tools, tool_choice, stop, sampling and
//! max tokens map to their Anthropic names.

use serde_json::{json, Map, Value};

const DEFAULT_MAX_TOKENS: u64 = 4096;

pub fn to_anthropic(req: &Value, stream: bool) -> Result<Value, String> {
    let obj = req
        .as_object()
        .ok_or_else(|| "the request body must be a JSON object".to_owned())?;
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| "`messages` is required and must be an array".to_owned())?;
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<(String, Vec<Value>)> = Vec::new();
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let blocks = match role {
            "system" | "developer" => {
                system.push(text_of(m.get("content")));
                continue;
            }
            "user" => user_blocks(m.get("content"))?,
            "assistant" => assistant_blocks(m)?,
            "tool" => vec![json!({
                "type": "tool_result",
                "tool_use_id": m.get("tool_call_id").and_then(Value::as_str).unwrap_or(""),
                "content": text_of(m.get("content")),
            })],
            other => return Err(format!("unsupported message role `{other}`")),
        };
        let role = if role == "assistant" {
            "assistant"
        } else {
            "user"
        };
        match turns.last_mut() {
            Some((last, b)) if last == role => b.extend(blocks),
            _ => turns.push((role.to_owned(), blocks)),
        }
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut out = Map::new();
    out.insert(
        "model".into(),
        obj.get("model").cloned().unwrap_or(Value::Null),
    );
    out.insert("messages".into(), Value::Array(messages));
    let max = obj
        .get("max_completion_tokens")
        .or_else(|| obj.get("max_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), max.into());
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    for key in ["temperature", "top_p"] {
        if let Some(v) = obj.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    match obj.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if !a.is_empty() => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    if let Some(tools) = obj.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .filter_map(|t| t.get("function"))
            .map(|f| {
                let mut t = json!({
                    "name": f.get("name").cloned().unwrap_or(Value::Null),
                    "input_schema": f.get("parameters").cloned()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                });
                if let Some(d) = f.get("description") {
                    t["description"] = d.clone();
                }
                t
            })
            .collect();
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
        }
    }
    if let Some(choice) = obj.get("tool_choice") {
        let mapped = match choice {
            Value::String(s) if s == "auto" => Some(json!({"type": "auto"})),
            Value::String(s) if s == "required" => Some(json!({"type": "any"})),
            Value::String(s) if s == "none" => Some(json!({"type": "none"})),
            Value::Object(o) => o
                .get("function")
                .and_then(|f| f.get("name"))
                .map(|n| json!({"type": "tool", "name": n})),
            _ => None,
        };
        if let Some(mut m) = mapped {
            if obj.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
                m["disable_parallel_tool_use"] = Value::Bool(true);
            }
            out.insert("tool_choice".into(), m);
        }
    }
    if let Some(user) = obj.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if stream {
        out.insert("stream".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
}

/// Text of a content that is a string or an array of text parts.
fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn user_blocks(content: Option<&Value>) -> Result<Vec<Value>, String> {
    match content {
        Some(Value::String(s)) => Ok(vec![json!({"type": "text", "text": s})]),
        Some(Value::Array(parts)) => parts.iter().map(user_part).collect(),
        _ => Ok(Vec::new()),
    }
}

fn user_part(part: &Value) -> Result<Value, String> {
    match part.get("type").and_then(Value::as_str) {
        Some("text") => {
            Ok(json!({"type": "text", "text": part.get("text").cloned().unwrap_or_default()}))
        }
        Some("image_url") => {
            let url = part
                .pointer("/image_url/url")
                .and_then(Value::as_str)
                .unwrap_or("");
            // data:<media type>;base64,<data>
            if let Some(rest) = url.strip_prefix("data:") {
                let (media, data) = rest
                    .split_once(";base64,")
                    .ok_or_else(|| "image data URLs must be base64".to_owned())?;
                Ok(
                    json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}),
                )
            } else {
                Ok(json!({"type": "image", "source": {"type": "url", "url": url}}))
            }
        }
        other => Err(format!(
            "content part type `{}` is not supported for Claude models",
            other.unwrap_or("?")
        )),
    }
}

fn assistant_blocks(m: &Value) -> Result<Vec<Value>, String> {
    let mut blocks = Vec::new();
    let text = text_of(m.get("content"));
    if !text.is_empty() {
        blocks.push(json!({"type": "text", "text": text}));
    }
    for call in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let args = call
            .pointer("/function/arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}");
        let input: Value = serde_json::from_str(if args.trim().is_empty() { "{}" } else { args })
            .map_err(|_| "tool call arguments must be a JSON object".to_owned())?;
        blocks.push(json!({
            "type": "tool_use",
            "id": call.get("id").cloned().unwrap_or_default(),
            "name": call.pointer("/function/name").cloned().unwrap_or_default(),
            "input": input,
        }));
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_system_turns_tools_and_results() {
        let req = json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "stop": "END",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
                {"role": "user", "content": "Thanks"}
            ],
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
            "tool_choice": "required"
        });
        let out = to_anthropic(&req, true).unwrap();
        assert_eq!(out["system"], "Be brief.");
        assert_eq!(out["max_tokens"], 100);
        assert_eq!(out["stream"], true);
        assert_eq!(out["stop_sequences"], json!(["END"]));
        assert_eq!(out["tool_choice"], json!({"type": "any"}));
        let msgs = out["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[1]["content"][0]["type"], "tool_use");
        assert_eq!(msgs[1]["content"][0]["input"]["city"], "Paris");
        // The tool result and the next user text merge into one user turn.
        assert_eq!(msgs[2]["role"], "user");
        assert_eq!(msgs[2]["content"][0]["type"], "tool_result");
        assert_eq!(msgs[2]["content"][1]["text"], "Thanks");
        assert_eq!(out["tools"][0]["input_schema"]["type"], "object");
    }
}
