//! Token counts read from upstream answers: the `usage` objects of OpenAI and Anthropic,
//! streamed or not, plus the length of the text produced, which estimates the output when
//! a stream ended before its usage arrived.

use crate::catalog::Tokens;
use crate::json_scan::{self, Keys};
use memchr::memmem::FinderRev;
use serde::Deserialize;
use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::LazyLock;

/// What an event is looked into for: its usage (first), then the keys whose string values are
/// text produced.
static OPENAI_KEYS: Keys = Keys::new(&["\"usage\"", "\"content\"", "\"arguments\""]);
static ANTHROPIC_KEYS: Keys = Keys::new(&["\"usage\"", "\"text\"", "\"partial_json\""]);

/// Characters of text in an event (the string values of every key but the first), or None
/// when its first key, `usage`, has an object value (or the keys could not be searched for):
/// the event then needs a real parse.
fn text_unless_usage(keys: &Keys, data: &[u8]) -> Option<u64> {
    let mut chars = 0;
    let mut usage = false;
    let searched = keys.each_value(data, |key, at| {
        if key == 0 {
            usage = json_scan::is_object(data, at);
            if usage {
                return ControlFlow::Break(());
            }
        } else {
            chars += json_scan::string_value_chars(data, at);
        }
        ControlFlow::Continue(())
    });
    (searched && !usage).then_some(chars)
}

#[derive(Debug, Default)]
pub struct Tally {
    pub tokens: Tokens,
    pub input_seen: bool,
    pub output_seen: bool,
    /// Characters of text and tool arguments streamed so far.
    pub text_chars: u64,
}

#[derive(Deserialize, Default)]
struct OaUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    /// A server that sends something other than this object (a number, say) loses only its
    /// cached count, not the whole usage: prompt and completion tokens are still read.
    #[serde(
        default,
        rename = "prompt_tokens_details",
        deserialize_with = "cached_tokens"
    )]
    cached_tokens: Option<u64>,
}

/// The arms of a lenient visitor (`Value = Option<_>`) for the values it does not read: a
/// fraction, a boolean, a string, null or an array is `None`, not an error.
macro_rules! none_for_other_values {
    () => {
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    };
}

/// `prompt_tokens_details.cached_tokens` when the details are an object and the count reads as
/// one, `None` otherwise (instead of an error that would fail the whole usage). A visitor, so
/// that nothing is buffered: an untagged enum copied the value into serde's `Content` first.
fn cached_tokens<'de, D: serde::Deserializer<'de>>(value: D) -> Result<Option<u64>, D::Error> {
    use serde::de::{IgnoredAny, MapAccess, Visitor};

    #[derive(Deserialize)]
    #[serde(field_identifier, rename_all = "snake_case")]
    enum Key {
        CachedTokens,
        #[serde(other)]
        Other,
    }

    #[derive(Deserialize)]
    struct Count(#[serde(deserialize_with = "count_or_none")] Option<u64>);

    struct Details;
    impl<'de> Visitor<'de> for Details {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("prompt token details")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut cached = None;
            while let Some(key) = map.next_key::<Key>()? {
                match key {
                    Key::CachedTokens => cached = map.next_value::<Count>()?.0,
                    Key::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(cached)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        none_for_other_values!();
    }
    value.deserialize_any(Details)
}

/// The top-level `usage` of a whole (non-streamed) answer, parsed where `json_scan` finds it:
/// serde skipping the rest of the answer cost ~5k instructions of a request's ~68k. None where
/// a parse of the whole answer would find none: no usage, a null one, or not an object.
fn top_level_usage<'a, U: Deserialize<'a>>(body: &'a [u8]) -> Option<U> {
    static USAGE: LazyLock<FinderRev> = LazyLock::new(|| FinderRev::new("\"usage\""));
    json_scan::top_level_value(body, &USAGE, |value| {
        let mut values = serde_json::Deserializer::from_slice(value).into_iter::<U>();
        let usage = values.next()?.ok()?;
        Some((usage, values.byte_offset()))
    })
}

#[derive(Deserialize)]
struct OaChunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<OaChoice<'a>>,
    #[serde(default)]
    usage: Option<OaUsage>,
}

#[derive(Deserialize)]
struct OaChoice<'a> {
    #[serde(default, borrow)]
    delta: Option<OaDelta<'a>>,
}

#[derive(Deserialize)]
struct OaDelta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<OaToolDelta<'a>>>,
}

#[derive(Deserialize)]
struct OaToolDelta<'a> {
    #[serde(default, borrow)]
    function: Option<OaFunctionDelta<'a>>,
}

#[derive(Deserialize)]
struct OaFunctionDelta<'a> {
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

/// Each count is read on its own: a server that writes one oddly (a string, a fraction) loses
/// that count, not the whole usage, as OpenAI's `prompt_tokens_details` does.
#[derive(Deserialize, Default)]
pub struct AnUsage {
    #[serde(default, deserialize_with = "count_or_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count_or_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count_or_none")]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default, deserialize_with = "count_or_none")]
    pub cache_creation_input_tokens: Option<u64>,
}

/// A token count when the value is a whole number that fits, `None` for anything else.
fn count_or_none<'de, D: serde::Deserializer<'de>>(value: D) -> Result<Option<u64>, D::Error> {
    use serde::de::{IgnoredAny, MapAccess, Visitor};

    struct Count;
    impl<'de> Visitor<'de> for Count {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a token count")
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(u64::try_from(v).ok())
        }
        none_for_other_values!();
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(None)
        }
    }
    value.deserialize_any(Count)
}

#[derive(Deserialize)]
struct AnEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    message: Option<AnMessage>,
    #[serde(default)]
    usage: Option<AnUsage>,
    #[serde(default, borrow)]
    delta: Option<AnDelta<'a>>,
}

#[derive(Deserialize)]
struct AnMessage {
    #[serde(default)]
    usage: Option<AnUsage>,
}

#[derive(Deserialize)]
struct AnDelta<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    partial_json: Option<Cow<'a, str>>,
}

impl Tally {
    fn openai_usage(&mut self, u: &OaUsage) {
        self.tokens.input = u.prompt_tokens;
        self.tokens.output = u.completion_tokens;
        self.tokens.cache_read = u.cached_tokens.unwrap_or(0);
        self.input_seen = true;
        self.output_seen = true;
    }

    /// Anthropic's input_tokens excludes cached tokens; ours counts every prompt token.
    pub fn anthropic_usage(&mut self, u: &AnUsage, final_output: bool) {
        if u.input_tokens.is_some()
            || u.cache_read_input_tokens.is_some()
            || u.cache_creation_input_tokens.is_some()
        {
            if let Some(r) = u.cache_read_input_tokens {
                self.tokens.cache_read = r;
            }
            if let Some(w) = u.cache_creation_input_tokens {
                self.tokens.cache_write = w;
            }
            if let Some(i) = u.input_tokens {
                self.tokens.input = i + self.tokens.cache_read + self.tokens.cache_write;
                self.input_seen = true;
            }
        }
        if let Some(o) = u.output_tokens {
            self.tokens.output = o;
            if final_output {
                self.output_seen = true;
            }
        }
    }

    /// One `data:` payload of an OpenAI chat stream. True when it is the usage-only chunk
    /// (empty `choices`, `usage` set) that `include_usage` adds at the end.
    pub fn openai_event(&mut self, data: &[u8]) -> bool {
        if let Some(chars) = text_unless_usage(&OPENAI_KEYS, data) {
            // Nearly every event: a few characters of text (or of tool arguments). A parse
            // of each would cost several times the rest of relaying it.
            self.text_chars += chars;
            return false;
        }
        let Ok(chunk) = serde_json::from_slice::<OaChunk>(data) else {
            return false;
        };
        for c in &chunk.choices {
            if let Some(d) = &c.delta {
                self.text_chars += d.content.as_ref().map_or(0, |s| s.chars().count()) as u64;
                for t in d.tool_calls.iter().flatten() {
                    if let Some(a) = t.function.as_ref().and_then(|f| f.arguments.as_ref()) {
                        self.text_chars += a.chars().count() as u64;
                    }
                }
            }
        }
        match &chunk.usage {
            Some(u) => {
                self.openai_usage(u);
                chunk.choices.is_empty()
            }
            None => false,
        }
    }

    /// One event of an Anthropic messages stream.
    pub fn anthropic_event(&mut self, data: &[u8]) {
        if let Some(chars) = text_unless_usage(&ANTHROPIC_KEYS, data) {
            // Deltas of text or tool input, pings, block starts and stops: only their text
            // counts. `message_start` and `message_delta` carry the usage and are parsed.
            self.text_chars += chars;
            return;
        }
        let Ok(ev) = serde_json::from_slice::<AnEvent>(data) else {
            return;
        };
        match ev.kind.as_ref() {
            "message_start" => {
                if let Some(u) = ev.message.as_ref().and_then(|m| m.usage.as_ref()) {
                    // Its output_tokens is a placeholder; the real count comes in message_delta.
                    self.anthropic_usage(u, false);
                    self.tokens.output = 0;
                }
            }
            "message_delta" => {
                if let Some(u) = &ev.usage {
                    self.anthropic_usage(u, true);
                }
            }
            "content_block_delta" => {
                if let Some(d) = &ev.delta {
                    let n = d.text.as_ref().or(d.partial_json.as_ref());
                    self.text_chars += n.map_or(0, |s| s.chars().count()) as u64;
                }
            }
            _ => {}
        }
    }

    /// A whole (non-streamed) OpenAI body: chat completion or embeddings.
    pub fn openai_body(&mut self, body: &[u8]) {
        if let Some(u) = top_level_usage::<OaUsage>(body) {
            self.openai_usage(&u);
        }
    }

    /// A whole (non-streamed) Anthropic message.
    pub fn anthropic_body(&mut self, body: &[u8]) {
        if let Some(u) = top_level_usage::<AnUsage>(body) {
            self.anthropic_usage(&u, true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openai_stream_usage_and_text() {
        let mut t = Tally::default();
        assert!(!t.openai_event(br#"{"choices":[{"delta":{"content":"Hello"}}],"usage":null}"#));
        assert!(t.openai_event(
            br#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":2}}}"#
        ));
        assert_eq!(t.text_chars, 5);
        assert_eq!(
            t.tokens,
            Tokens {
                input: 7,
                output: 3,
                cache_read: 2,
                cache_write: 0
            }
        );
        assert!(t.output_seen);
    }

    /// Found by fuzzing: `prompt_tokens_details` that is not an object cost the whole usage.
    #[test]
    fn odd_prompt_details_lose_only_the_cached_count() {
        for details in ["5", "\"x\"", "null", "[]", r#"{"cached_tokens":"2"}"#] {
            let body = format!(
                r#"{{"choices":[],"usage":{{"prompt_tokens":24,"completion_tokens":5,"prompt_tokens_details":{details}}}}}"#
            );
            let mut t = Tally::default();
            t.openai_body(body.as_bytes());
            assert_eq!((t.tokens.input, t.tokens.output), (24, 5), "{body}");
            assert_eq!(t.tokens.cache_read, 0, "{body}");
            let mut t = Tally::default();
            assert!(t.openai_event(body.as_bytes()), "{body}");
            assert_eq!((t.tokens.input, t.tokens.output), (24, 5), "{body}");
        }
        // The count among other members, as OpenAI sends it.
        let mut t = Tally::default();
        t.openai_body(br#"{"usage":{"prompt_tokens":24,"completion_tokens":5,"prompt_tokens_details":{"audio_tokens":0,"cached_tokens":2,"later":{"x":[1,"y"]}}}}"#);
        assert_eq!(t.tokens.cache_read, 2);
    }

    /// Servers that speak OpenAI's format but write JSON with spaces (Python's default), tool
    /// calls, and usage sent in the same chunk as the last text.
    #[test]
    fn reads_openai_compatible_streams_written_differently() {
        let mut t = Tally::default();
        let args = r#"{"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\": \"Zürich\"}"}}]}}]}"#;
        assert!(!t.openai_event(args.as_bytes()));
        // {"city": "Zürich"}
        assert_eq!(t.text_chars, 18);
        assert!(!t.openai_event(
            br#"{"choices": [{"delta": {"content": "ok"}}], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}"#
        ));
        assert_eq!(t.text_chars, 20);
        assert_eq!((t.tokens.input, t.tokens.output), (9, 4));
        assert!(t.output_seen);
    }

    /// Only the answer's own usage is billed, wherever it stands among the members, never a
    /// `usage` nested in something else (a tool's result, say).
    #[test]
    fn reads_the_usage_of_whole_answers() {
        let mut t = Tally::default();
        t.openai_body(
            br#"{"choices": [{"message": {"content": "x", "usage": {"prompt_tokens": 1000}}}], "usage": {"prompt_tokens": 12, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}}, "system_fingerprint": "fp"}"#,
        );
        assert_eq!(
            (t.tokens.input, t.tokens.output, t.tokens.cache_read),
            (12, 5, 4)
        );
        assert!(t.input_seen && t.output_seen);

        let mut t = Tally::default();
        t.openai_body(br#"{"object":"list","data":[{"embedding":[0.1,-2e-3]}],"usage":{"prompt_tokens":8,"total_tokens":8}}"#);
        assert_eq!((t.tokens.input, t.tokens.output), (8, 0));

        let mut t = Tally::default();
        t.openai_body(br#"{"choices":[],"usage":null}"#);
        t.openai_body(br#"{"choices":[{"usage":{"prompt_tokens":3}}]}"#);
        t.openai_body(b"not json");
        assert!(!t.input_seen && !t.output_seen);

        let mut t = Tally::default();
        t.anthropic_body(br#"{"content":[{"type":"tool_use","input":{"usage":{"input_tokens":500}}}],"usage":{"input_tokens":20,"cache_read_input_tokens":10,"output_tokens":6}}"#);
        assert_eq!(
            (t.tokens.input, t.tokens.output, t.tokens.cache_read),
            (30, 6, 10)
        );
        assert!(t.output_seen);
    }

    /// An oddly written count (a string, a fraction, a negative number, an object) loses that
    /// count only; the others are still read, whole answer or stream.
    #[test]
    fn an_odd_anthropic_count_loses_only_itself() {
        for odd in ["\"12\"", "12.5", "-3", "{}", "[1]", "true", "null"] {
            let body = format!(
                r#"{{"usage":{{"input_tokens":20,"cache_read_input_tokens":{odd},"cache_creation_input_tokens":4,"output_tokens":6}}}}"#
            );
            let mut t = Tally::default();
            t.anthropic_body(body.as_bytes());
            let read = (t.tokens.input, t.tokens.cache_read, t.tokens.output);
            assert_eq!(read, (24, 0, 6), "{body}");
            assert!(t.input_seen && t.output_seen, "{body}");

            let start = format!(
                r#"{{"type":"message_start","message":{{"usage":{{"input_tokens":{odd},"output_tokens":1}}}}}}"#
            );
            let delta = format!(
                r#"{{"type":"message_delta","usage":{{"output_tokens":7,"input_tokens":{odd}}}}}"#
            );
            let mut t = Tally::default();
            t.anthropic_event(start.as_bytes());
            t.anthropic_event(delta.as_bytes());
            assert!(!t.input_seen, "{start}");
            assert_eq!(t.tokens.output, 7, "{delta}");
            assert!(t.output_seen, "{delta}");
        }
    }

    #[test]
    fn reads_anthropic_stream_usage() {
        let mut t = Tally::default();
        t.anthropic_event(br#"{"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":5,"cache_creation_input_tokens":0,"output_tokens":1}}}"#);
        assert!(t.input_seen && !t.output_seen);
        t.anthropic_event(br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#);
        t.anthropic_event(br#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":12}}"#);
        assert_eq!(
            t.tokens,
            Tokens {
                input: 15,
                output: 12,
                cache_read: 5,
                cache_write: 0
            }
        );
        assert!(t.output_seen);
        assert_eq!(t.text_chars, 2);
    }
}
