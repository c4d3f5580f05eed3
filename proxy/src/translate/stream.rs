//! An Anthropic messages stream as OpenAI `chat.completion.chunk` events, one event in, zero
//! or more out, so the client sees each token as soon as Anthropic sends it.

use crate::catalog::Tokens;
use serde_json::{json, Value};

pub struct ToOpenAi {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    /// Anthropic content block index → OpenAI tool call index.
    tool_index: Vec<(u64, usize)>,
    tools: usize,
    done: bool,
}

impl ToOpenAi {
    pub fn new(model: String, created: i64, include_usage: bool) -> Self {
        Self {
            id: String::new(),
            model,
            created,
            include_usage,
            tool_index: Vec::new(),
            tools: 0,
            done: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>, out: &mut Vec<u8>) {
        let mut c = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            c["usage"] = Value::Null;
        }
        frame(&c, out);
    }

    /// Translates one Anthropic event (its data) and appends the OpenAI frames to `out`.
    /// `tokens` is the running usage, already updated with this event.
    pub fn event(&mut self, data: &[u8], tokens: &Tokens, out: &mut Vec<u8>) {
        let Ok(ev) = serde_json::from_slice::<Value>(data) else {
            return;
        };
        match ev.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let id = ev
                    .pointer("/message/id")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                self.id = format!("chatcmpl-{id}");
                self.chunk(json!({"role": "assistant", "content": ""}), None, out);
            }
            "content_block_start" => {
                let block = ev.get("content_block").cloned().unwrap_or_default();
                if block.get("type").and_then(Value::as_str) == Some("tool_use") {
                    let index = ev.get("index").and_then(Value::as_u64).unwrap_or(0);
                    let n = self.tools;
                    self.tools += 1;
                    self.tool_index.push((index, n));
                    self.chunk(
                        json!({"tool_calls": [{"index": n, "id": block.get("id"), "type": "function",
                            "function": {"name": block.get("name"), "arguments": ""}}]}),
                        None,
                        out,
                    );
                }
            }
            "content_block_delta" => {
                let delta = ev.get("delta").cloned().unwrap_or_default();
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        self.chunk(json!({"content": delta.get("text")}), None, out)
                    }
                    Some("input_json_delta") => {
                        let index = ev.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let n = self
                            .tool_index
                            .iter()
                            .find(|(i, _)| *i == index)
                            .map_or(0, |(_, n)| *n);
                        self.chunk(
                            json!({"tool_calls": [{"index": n,
                                "function": {"arguments": delta.get("partial_json")}}]}),
                            None,
                            out,
                        );
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                let stop = ev
                    .pointer("/delta/stop_reason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn");
                self.chunk(json!({}), Some(super::finish_reason(stop)), out);
            }
            "message_stop" => self.finish(tokens, out),
            "error" => {
                let message = ev.pointer("/error/message").cloned().unwrap_or_default();
                frame(
                    &json!({"error": {"message": message, "type": "server_error"}}),
                    out,
                );
            }
            _ => {}
        }
    }

    fn finish(&mut self, tokens: &Tokens, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.done = true;
        if self.include_usage {
            let c = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": super::response::usage(tokens),
            });
            frame(&c, out);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

fn frame(v: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    // Writing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
    out.extend_from_slice(b"\n\n");
}
