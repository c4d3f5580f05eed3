//! Looks into a stream event's JSON without parsing it, where a parse would cost more than
//! relaying the event: whether it carries a usage object and needs a real parse (most carry a
//! few characters of text and nothing else), and how many characters of text it carries
//! (which only estimates a stream's output when its usage never came). This halves what a
//! stream costs the proxy.
//!
//! A quote inside a JSON string is always escaped, so `"key"` followed by `:` can only be
//! an object key (or the tail of a key ending in an escaped quote, which no provider sends).

use aho_corasick::{packed, AhoCorasick, MatchKind};
use std::ops::ControlFlow;
use std::sync::OnceLock;

/// A few quoted object keys, found together in one pass over the JSON (aho-corasick's SIMD
/// search for a handful of needles): a search per key cost a pass per key.
pub struct Keys {
    quoted: &'static [&'static str],
    searcher: OnceLock<Searcher>,
}

enum Searcher {
    Packed(packed::Searcher),
    /// Where the CPU lacks the vector instructions the packed search needs.
    Automaton(AhoCorasick),
    /// Neither could be built (never seen): callers parse instead.
    Unavailable,
}

impl Keys {
    /// Each key includes its quotes: `"usage"`.
    pub const fn new(quoted: &'static [&'static str]) -> Self {
        Self {
            quoted,
            searcher: OnceLock::new(),
        }
    }

    fn searcher(&self) -> &Searcher {
        self.searcher.get_or_init(|| {
            let mut packed = packed::Config::new()
                .match_kind(packed::MatchKind::LeftmostFirst)
                .builder();
            for key in self.quoted {
                packed.add(key);
            }
            match packed.build() {
                Some(s) => Searcher::Packed(s),
                None => AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(self.quoted)
                    .map_or(Searcher::Unavailable, Searcher::Automaton),
            }
        })
    }

    /// Calls `on_value(key, at)` for each value of one of the keys in `json`, in order: which
    /// key (its index) and where its value starts; stops when it breaks. False if it could
    /// not search at all.
    pub fn each_value(
        &self,
        json: &[u8],
        mut on_value: impl FnMut(usize, usize) -> ControlFlow<()>,
    ) -> bool {
        let mut found = |key: usize, end: usize| {
            let after_key = skip_space(json, end);
            if json.get(after_key) == Some(&b':') {
                on_value(key, skip_space(json, after_key + 1))
            } else {
                ControlFlow::Continue(())
            }
        };
        match self.searcher() {
            Searcher::Packed(s) => {
                for m in s.find_iter(json) {
                    if found(m.pattern().as_usize(), m.end()).is_break() {
                        break;
                    }
                }
            }
            Searcher::Automaton(a) => {
                for m in a.find_iter(json) {
                    if found(m.pattern().as_usize(), m.end()).is_break() {
                        break;
                    }
                }
            }
            Searcher::Unavailable => return false,
        }
        true
    }
}

/// True if the value starting at `at` is an object.
pub fn is_object(json: &[u8], at: usize) -> bool {
    json.get(at) == Some(&b'{')
}

/// Characters in the value starting at `at` if it is a string (an escape sequence counts as
/// one), else 0.
pub fn string_value_chars(json: &[u8], at: usize) -> u64 {
    match json.get(at) {
        Some(b'"') => string_chars(&json[at + 1..]),
        _ => 0,
    }
}

fn skip_space(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// Characters of the JSON string whose text starts `text`, up to its closing quote.
fn string_chars(text: &[u8]) -> u64 {
    let mut chars = 0;
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        match b {
            b'"' => break,
            b'\\' => {
                chars += 1;
                i += if text.get(i + 1) == Some(&b'u') { 6 } else { 2 };
            }
            _ => {
                // Count characters, not bytes: skip UTF-8 continuation bytes.
                chars += u64::from(b & 0xC0 != 0x80);
                i += 1;
            }
        }
    }
    chars
}

#[cfg(test)]
mod tests {
    use super::*;

    static KEYS: Keys = Keys::new(&["\"usage\"", "\"content\""]);

    fn values(keys: &Keys, json: &[u8]) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        assert!(keys.each_value(json, |k, v| {
            all.push((k, v));
            ControlFlow::Continue(())
        }));
        all
    }

    fn usage_object(json: &[u8]) -> bool {
        values(&KEYS, json)
            .into_iter()
            .any(|(k, v)| k == 0 && is_object(json, v))
    }

    fn content_chars(json: &[u8]) -> u64 {
        values(&KEYS, json)
            .into_iter()
            .filter(|&(k, _)| k == 1)
            .map(|(_, v)| string_value_chars(json, v))
            .sum()
    }

    #[test]
    fn finds_object_values_whatever_the_spacing() {
        assert!(usage_object(
            br#"{"choices":[],"usage":{"prompt_tokens":1}}"#
        ));
        assert!(usage_object(b"{\"usage\" :\n {\"prompt_tokens\": 1}}"));
        assert!(!usage_object(br#"{"choices":[],"usage":null}"#));
        assert!(!usage_object(br#"{"choices":[]}"#));
        // In a string the quotes are escaped, so text that mentions the key is no key.
        assert!(!usage_object(br#"{"content":"say \"usage\":{ here"}"#));
        assert!(!usage_object(br#"{"usage_note":{"a":1}}"#));
        // A key mentioned as a value is no key either.
        assert!(!usage_object(br#"{"kind":"usage","x":{"a":1}}"#));
    }

    #[test]
    fn counts_characters_of_string_values() {
        let chunk = r#"{"choices":[{"delta":{"content":"héllo \"x\"\n\u00e9"},"logprobs":{"content":[1]}}]}"#;
        // h é l l o space " x " \n é(\u00e9)
        assert_eq!(content_chars(chunk.as_bytes()), 11);
        assert_eq!(content_chars(br#"{"role":"assistant","content":""}"#), 0);
        assert_eq!(content_chars(br#"{"content":null}"#), 0);
        assert_eq!(content_chars(b"[DONE]"), 0);
        // A string cut short by the end of the data counts what is there.
        assert_eq!(content_chars(br#"{"content":"abc"#), 3);
        // Two values, and a usage between them.
        assert_eq!(
            content_chars(br#"{"content":"ab","usage":null,"x":{"content":"cde"}}"#),
            5
        );
    }

    /// The search without vector instructions finds the same values.
    #[test]
    fn the_automaton_finds_what_the_packed_search_finds() {
        let automaton = Keys {
            quoted: KEYS.quoted,
            searcher: OnceLock::from(Searcher::Automaton(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostFirst)
                    .build(KEYS.quoted)
                    .unwrap(),
            )),
        };
        let json = br#"{"content":"a","usage" : {"n":1},"content":null,"content" :"xyz"}"#;
        let all = values(&KEYS, json);
        assert_eq!(all.len(), 4);
        assert_eq!(values(&automaton, json), all);
    }
}
