//! Entry points for the `cargo fuzz` targets in `fuzz/` (feature `fuzzing`, off in every
//! normal build): the SSE parser, the usage reader and the OpenAI↔Anthropic translation,
//! reached without a server around them.

use crate::catalog::Tokens;
use serde_json::Value;

/// Events (name, data) of a byte stream fed in the given pieces.
pub fn sse_events(pieces: &[&[u8]]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut parser = crate::sse::SseParser::default();
    let mut events = Vec::new();
    for piece in pieces {
        parser.feed(piece, |name, data, _span| {
            events.push((name.to_vec(), data.to_vec()))
        });
    }
    events
}

/// What the usage reader makes of a whole answer: (input, output, cache read, cache write,
/// input seen, output seen).
pub type Read = (u64, u64, u64, u64, bool, bool);

fn read(t: &crate::tally::Tally) -> Read {
    let k = &t.tokens;
    (
        k.input,
        k.output,
        k.cache_read,
        k.cache_write,
        t.input_seen,
        t.output_seen,
    )
}

pub fn openai_body(body: &[u8]) -> Read {
    let mut t = crate::tally::Tally::default();
    t.openai_body(body);
    read(&t)
}

pub fn anthropic_body(body: &[u8]) -> Read {
    let mut t = crate::tally::Tally::default();
    t.anthropic_body(body);
    read(&t)
}

/// A stream's events through the usage reader, as the relay does.
pub fn stream_usage(anthropic: bool, events: &[&[u8]]) -> (Read, u64) {
    let mut t = crate::tally::Tally::default();
    for data in events {
        if anthropic {
            t.anthropic_event(data);
        } else {
            t.openai_event(data);
        }
    }
    (read(&t), t.text_chars)
}

/// One OpenAI stream event through the usage reader: whether it is the usage-only chunk (which
/// the relay hides from a client that did not ask for usage), and what it read.
pub fn openai_event(data: &[u8]) -> (bool, Read) {
    let mut t = crate::tally::Tally::default();
    let usage_only = t.openai_event(data);
    (usage_only, read(&t))
}

pub fn to_anthropic(request: &Value, stream: bool) -> Result<Value, String> {
    crate::translate::request::to_anthropic(request, stream)
}

pub fn to_openai(message: &Value, input: u64, output: u64) -> Value {
    let tokens = Tokens {
        input,
        output,
        ..Default::default()
    };
    crate::translate::response::to_openai(message, &tokens, 0)
}

/// An Anthropic stream translated to OpenAI frames, as the relay does.
pub fn stream_to_openai(events: &[&[u8]]) -> Vec<u8> {
    let mut t = crate::tally::Tally::default();
    let mut to = crate::translate::stream::ToOpenAi::new("m".into(), 0, true);
    let mut out = Vec::new();
    for data in events {
        t.anthropic_event(data);
        to.event(data, &t.tokens, &mut out);
    }
    out
}

pub fn error_message(body: &[u8]) -> String {
    crate::translate::response::error_message(body)
}
