//! Looks into JSON without parsing it, where a parse would cost more than relaying it: whether
//! a stream event carries a usage object and needs a real parse (most carry a few characters of
//! text and nothing else), how many characters of text it carries (which only estimates a
//! stream's output when its usage never came), and where a whole answer's top-level usage lies,
//! so that only that is parsed.
//!
//! A quote inside a JSON string is always escaped, so `"key"` followed by `:` can only be
//! an object key (or the tail of a key ending in an escaped quote, which no provider sends).

use aho_corasick::{packed, AhoCorasick, MatchKind};
use std::ops::{ControlFlow, Range};
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

/// The value of the top-level member `key` (its quoted name, `"usage"`, as a reverse searcher
/// built once) of the object `json`, read by `parse` (given the text from the value's first
/// byte on, it returns the value and how many bytes it took). A whole answer's usage is found without reading what comes before it: the
/// last mention of the key is taken, and it is a member of the answer itself when what follows
/// its value is further members and the closing brace that ends the text. Otherwise (a later
/// member mentions the key in something nested) the object is walked from its start. None when
/// the member is missing or does not parse, or `json` is not an object.
pub fn top_level_value<'a, T>(
    json: &'a [u8],
    key: &memchr::memmem::FinderRev<'_>,
    parse: impl Fn(&'a [u8]) -> Option<(T, usize)>,
) -> Option<T> {
    let quoted = key.needle();
    let open = skip_space(json, 0);
    if json.get(open) != Some(&b'{') {
        return None;
    }
    if let Some(at) = key.rfind(json) {
        // A quote after a backslash is inside a string.
        if at > open && json[at - 1] != b'\\' {
            let colon = skip_space(json, at + quoted.len());
            if json.get(colon) == Some(&b':') {
                let start = skip_space(json, colon + 1);
                if let Some((value, len)) = parse(&json[start..]) {
                    if ends_the_object(json, start + len) {
                        return Some(value);
                    }
                }
            }
        }
    }
    let key = &quoted[1..quoted.len() - 1];
    let value = walk(json, open, key)??;
    parse(&json[value]).map(|(v, _)| v)
}

/// Walks the members of the object opening at `open`: where the value of `key` lies (its last,
/// if it comes twice), if it is there. None when the text is not one object with matched
/// brackets. Strings are skipped quote to quote; numbers and literals are not read. Keys are
/// compared as written: one spelt with escapes (which no provider sends) is not found.
fn walk(json: &[u8], open: usize, key: &[u8]) -> Option<Option<Range<usize>>> {
    let mut found = None;
    let mut i = skip_space(json, open + 1);
    if json.get(i) == Some(&b'}') {
        return closes(json, i).then_some(found);
    }
    loop {
        let (name, value) = member(json, i)?;
        let end = value.end;
        if name == key {
            found = Some(value);
        }
        i = skip_space(json, end);
        match json.get(i) {
            Some(b',') => i = skip_space(json, i + 1),
            Some(b'}') => return closes(json, i).then_some(found),
            _ => return None,
        }
    }
}

/// True when what follows `i` (the end of a member's value) is further members and the
/// closing brace of their object, and nothing but spaces after it.
fn ends_the_object(json: &[u8], i: usize) -> bool {
    let mut i = skip_space(json, i);
    loop {
        match json.get(i) {
            Some(b'}') => return closes(json, i),
            Some(b',') => match member(json, skip_space(json, i + 1)) {
                Some((_, value)) => i = skip_space(json, value.end),
                None => return false,
            },
            _ => return false,
        }
    }
}

/// True when the brace at `i` is the text's last character but spaces.
fn closes(json: &[u8], i: usize) -> bool {
    skip_space(json, i + 1) == json.len()
}

/// The member whose key's opening quote is at `i`: the key's text and where its value lies.
fn member(json: &[u8], i: usize) -> Option<(&[u8], Range<usize>)> {
    if json.get(i) != Some(&b'"') {
        return None;
    }
    let key_end = string_end(json, i + 1)?;
    let colon = skip_space(json, key_end + 1);
    if json.get(colon) != Some(&b':') {
        return None;
    }
    let start = skip_space(json, colon + 1);
    Some((&json[i + 1..key_end], start..value_end(json, start)?))
}

/// The index of the closing quote of the string whose text starts at `i`.
fn string_end(json: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += memchr::memchr2(b'"', b'\\', json.get(i..)?)?;
        if json[i] == b'"' {
            return Some(i);
        }
        // The backslash and the character it escapes (`\u` escapes are plain hex after it).
        i += 2;
    }
}

/// Containers nested deeper than this are refused, as serde_json refuses them.
const MAX_DEPTH: u32 = 128;

/// The index just past the value that starts at `i`.
fn value_end(json: &[u8], i: usize) -> Option<usize> {
    match *json.get(i)? {
        b'"' => string_end(json, i + 1).map(|e| e + 1),
        b'{' | b'[' => {
            // One bit a level, set for an object: a closing bracket must match its opening.
            let mut open: u128 = 0;
            let mut depth = 0;
            let mut j = i;
            loop {
                match *json.get(j)? {
                    b'"' => j = string_end(json, j + 1)?,
                    b @ (b'{' | b'[') => {
                        if depth == MAX_DEPTH {
                            return None;
                        }
                        open = (open << 1) | u128::from(b == b'{');
                        depth += 1;
                    }
                    b @ (b'}' | b']') => {
                        if ((open & 1) == 1) != (b == b'}') {
                            return None;
                        }
                        open >>= 1;
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        // A number or a literal: up to what ends it.
        _ => {
            let len = json[i..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(json.len() - i);
            (len > 0).then_some(i + len)
        }
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

    /// The value with its length, as `top_level_value` wants it: here the raw text.
    fn raw(value: &[u8]) -> Option<(&[u8], usize)> {
        let end = value_end(value, 0)?;
        Some((&value[..end], end))
    }

    fn usage(json: &[u8]) -> Option<&[u8]> {
        top_level_value(json, &memchr::memmem::FinderRev::new("\"usage\""), raw)
    }

    #[test]
    fn finds_the_top_level_member_only() {
        let usage_value = br#"{"prompt_tokens":1,"d":{"a":[1,{}]}}"#;
        // Last, not last, after a nested mention, before one, with odd spacing and strings
        // that hold quotes and brackets.
        for json in [
            r#"{"id":"x","usage":U}"#,
            r#" { "id" : "x\"}{[" , "usage" : U , "n":-1.5e3,"t":true } "#,
            r#"{"choices":[{"usage":{"prompt_tokens":9}}, "]"],"usage":U,"s":"fp"}"#,
            r#"{"usage":U,"content":[{"input":{"usage":{"input_tokens":500}}}]}"#,
            r#"{"usage":U,"x":"say \"usage\":{}"}"#,
        ] {
            let json = json.replace('U', std::str::from_utf8(usage_value).unwrap());
            assert_eq!(usage(json.as_bytes()), Some(&usage_value[..]), "{json}");
        }
        // Nested only, or named only as a value: not a member of the answer.
        for json in [
            &br#"{"choices":[{"usage":{"a":1}}]}"#[..],
            br#"{"a":{"usage":{"a":1}}}"#,
            br#"{"kind":"usage","x":{"a":1}}"#,
            b" {\n} ",
        ] {
            assert_eq!(usage(json), None, "{}", String::from_utf8_lossy(json));
        }
    }

    /// What a parse of the whole answer refuses, the walk refuses too (but for numbers and
    /// literals, which it does not read).
    #[test]
    fn refuses_what_is_not_one_object() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        for bad in [
            &b""[..],
            b"[]",
            b"{",
            br#"[{"usage":{"a":1}}]"#,
            br#"{"usage":{"a":1}"#,
            br#"{"usage":{"a":1]}"#,
            br#"{"a":[1}]}"#,
            br#"{"a":1,}"#,
            br#"{"a" 1}"#,
            br#"{a:1}"#,
            br#"{"a":}"#,
            br#"{"a":"unterminated}"#,
            br#"{"a":"\"#,
            br#"{"a":1} x"#,
            br#"{"a":1}{}"#,
            deep.as_bytes(),
        ] {
            assert_eq!(
                walk(bad, skip_space(bad, 0), b"usage"),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
            assert_eq!(usage(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        // A key twice (no provider repeats one): the last counts, as in serde_json's `Value`,
        // whether found from the end or by the walk (a later member mentions it nested).
        let twice = br#"{"usage":1,"usage":2}"#;
        assert_eq!(usage(twice), Some(&b"2"[..]));
        let twice = br#"{"usage":1,"usage":2,"x":{"usage":3}}"#;
        assert_eq!(usage(twice), Some(&b"2"[..]));
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
