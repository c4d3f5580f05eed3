//! What an emulated model answers: a deterministic text of N tokens or a tool call, token
//! counts for the prompt, and the paced SSE body (first-token latency, inter-token delay, cut).

use crate::ai::control::Settings;
use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One token each; the answer cycles through them.
const WORDS: &[&str] = &[
    "Hello",
    " from",
    " the",
    " Poindexter",
    " sandbox",
    ",",
    " a",
    " model",
    " that",
    " says",
    " the",
    " same",
    " thing",
    " every",
    " time",
    ".",
];

pub enum Finish {
    Stop,
    Length,
    ToolUse,
}

pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON text of the arguments.
    pub arguments: String,
}

pub struct Reply {
    pub pieces: Vec<&'static str>,
    pub tool: Option<ToolCall>,
    pub finish: Finish,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cached_tokens: u64,
}

impl Reply {
    pub fn text(&self) -> String {
        self.pieces.concat()
    }
}

/// A tool the model was offered: its name and the JSON schema of its input.
pub struct OfferedTool<'a> {
    pub name: &'a str,
    pub schema: Option<&'a Value>,
}

pub fn compose(
    settings: &Settings,
    prompt_tokens: u64,
    max_tokens: Option<u64>,
    tool: Option<OfferedTool<'_>>,
    seq: u64,
) -> Reply {
    let wanted = u64::from(settings.tokens);
    let limit = max_tokens.unwrap_or(u64::MAX);
    let cached_tokens = u64::from(settings.cached_tokens).min(prompt_tokens);
    if let Some(tool) = tool {
        return Reply {
            pieces: Vec::new(),
            tool: Some(ToolCall {
                id: format!("call_sbx{seq}"),
                name: tool.name.to_owned(),
                arguments: arguments_for(tool.schema),
            }),
            finish: Finish::ToolUse,
            prompt_tokens,
            completion_tokens: wanted.min(limit),
            cached_tokens,
        };
    }
    let n = wanted.min(limit);
    let pieces = (0..n as usize).map(|i| WORDS[i % WORDS.len()]).collect();
    Reply {
        pieces,
        tool: None,
        finish: if wanted > limit {
            Finish::Length
        } else {
            Finish::Stop
        },
        prompt_tokens,
        completion_tokens: n,
        cached_tokens,
    }
}

/// Arguments filling every property of the schema with the string "sandbox".
fn arguments_for(schema: Option<&Value>) -> String {
    let mut args = serde_json::Map::new();
    if let Some(props) = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    {
        for name in props.keys() {
            args.insert(name.clone(), Value::String("sandbox".into()));
        }
    }
    Value::Object(args).to_string()
}

/// Token estimate of a prompt: words in every text it carries, plus one per message.
pub fn count_prompt(values: &[&Value]) -> u64 {
    fn walk(v: &Value, n: &mut u64) {
        match v {
            Value::String(s) => *n += s.split_whitespace().count() as u64,
            Value::Array(a) => a.iter().for_each(|x| walk(x, n)),
            Value::Object(o) => {
                for (k, x) in o {
                    if k == "text" || k == "content" || k == "input" {
                        walk(x, n);
                    }
                }
                *n += 1;
            }
            _ => {}
        }
    }
    let mut n = 0;
    for v in values {
        walk(v, &mut n);
    }
    n.max(1)
}

/// A whole (non-streamed) answer: as JSON, or, when `cut_after` is set, broken off halfway
/// through its body as a crashed upstream would leave it (headers sent, no full body).
pub fn whole(answer: &Value, settings: &Settings) -> axum::response::Response {
    use axum::response::IntoResponse;
    if settings.cut_after.is_none() {
        return axum::Json(answer).into_response();
    }
    let bytes = Bytes::from(answer.to_string());
    let half = bytes.slice(..bytes.len() / 2);
    let body = futures::stream::once(async move { Ok(half) })
        .chain(futures::stream::once(async { Err(broken_off().await) }));
    axum::response::Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// The error that breaks a body off, as a crashed upstream would. It comes after what was
/// sent has reached the wire (hyper writes on the next poll), so the reader sees an accepted
/// answer break, not a refused request.
async fn broken_off() -> std::io::Error {
    tokio::time::sleep(Duration::from_millis(30)).await;
    std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut")
}

/// One SSE frame; `token` frames are the ones paced and counted by `cut_after`.
pub struct Frame {
    pub bytes: Bytes,
    pub token: bool,
}

/// Streams frames with the configured latency; a cut ends the body with an error, which
/// aborts the connection mid-response as a crashed upstream would.
/// `abandoned` counts streams dropped before their end (the client, or the proxy, hung up).
pub fn paced(frames: Vec<Frame>, settings: &Settings, abandoned: Arc<AtomicU64>) -> Body {
    let first = Duration::from_millis(settings.first_token_ms);
    let gap = Duration::from_millis(settings.inter_token_ms);
    let cut = settings.cut_after;
    let stall = settings.stall_after;
    if first.is_zero() && gap.is_zero() && cut.is_none() && stall.is_none() {
        let all: Vec<u8> = frames
            .iter()
            .flat_map(|f| f.bytes.iter().copied())
            .collect();
        return Body::from(all);
    }
    struct St {
        frames: std::vec::IntoIter<Frame>,
        sent_tokens: u32,
        started: bool,
        abandoned: Option<Arc<AtomicU64>>,
    }
    impl Drop for St {
        fn drop(&mut self) {
            if let Some(a) = &self.abandoned {
                if self.frames.len() > 0 {
                    a.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    let st = St {
        frames: frames.into_iter(),
        sent_tokens: 0,
        started: false,
        abandoned: Some(abandoned),
    };
    let stream = futures::stream::unfold(st, move |mut st| async move {
        let frame = st.frames.next()?;
        if !st.started {
            st.started = true;
            if !first.is_zero() {
                tokio::time::sleep(first).await;
            }
        } else if frame.token && !gap.is_zero() {
            tokio::time::sleep(gap).await;
        }
        if frame.token {
            if stall.is_some_and(|s| st.sent_tokens >= s) {
                // Hung: nothing more, until the reader hangs up (which drops this stream).
                std::future::pending::<()>().await;
            }
            if cut.is_some_and(|c| st.sent_tokens >= c) {
                let err = broken_off().await;
                // Drain so the stream ends after the error (a cut is not an abandonment).
                st.frames = Vec::new().into_iter();
                st.abandoned = None;
                return Some((Err(err), st));
            }
            st.sent_tokens += 1;
        }
        Some((Ok::<_, std::io::Error>(frame.bytes), st))
    });
    Body::from_stream(stream)
}

pub fn sse_data(v: &Value) -> Frame {
    Frame {
        bytes: Bytes::from(format!("data: {v}\n\n")),
        token: false,
    }
}

pub fn sse_event(event: &str, v: &Value) -> Frame {
    Frame {
        bytes: Bytes::from(format!("event: {event}\ndata: {v}\n\n")),
        token: false,
    }
}

pub fn token(mut f: Frame) -> Frame {
    f.token = true;
    f
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
