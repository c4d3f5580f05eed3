//! Looks into a provider's JSON without parsing it, where a parse would cost more than
//! relaying the answer:
//! - stream events: whether one carries a usage object and needs a real parse (most carry a
//!   few characters of text and nothing else), and how many characters of text it carries
//!   (which only estimates a stream's output when its usage never came);
//! - whole answers: their top-level `usage` (`Key::top_level_value`), read member by member
//!   (`Members`), where a parse of the answer cost ~10k instructions for a short chat answer
//!   and a float parse per number of an embedding.
//!
//! A quote inside a JSON string is always escaped, so `"key"` followed by `:` can only be
//! an object key (or the tail of a key ending in an escaped quote, which no provider sends).

use memchr::memmem::Finder;
use std::sync::OnceLock;

/// A quoted object key, found quickly.
pub struct Key {
    quoted: &'static [u8],
    finder: OnceLock<Finder<'static>>,
}

impl Key {
    /// `quoted` includes the quotes: `"usage"`.
    pub const fn new(quoted: &'static str) -> Self {
        Self {
            quoted: quoted.as_bytes(),
            finder: OnceLock::new(),
        }
    }

    fn finder(&self) -> &Finder<'static> {
        self.finder.get_or_init(|| Finder::new(self.quoted))
    }

    /// Where each value of this key starts in `json`.
    fn values<'a>(&'a self, json: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        self.finder().find_iter(json).filter_map(move |at| {
            let after_key = skip_space(json, at + self.quoted.len());
            (json.get(after_key) == Some(&b':')).then(|| skip_space(json, after_key + 1))
        })
    }

    /// True if some value of this key is an object. Never false when one is: a true answer
    /// only costs the caller a real parse.
    pub fn has_object(&self, json: &[u8]) -> bool {
        self.values(json).any(|v| json.get(v) == Some(&b'{'))
    }

    /// Characters in the string values of this key (an escape sequence counts as one).
    pub fn string_chars(&self, json: &[u8]) -> u64 {
        self.values(json)
            .filter(|&v| json.get(v) == Some(&b'"'))
            .map(|v| string_chars(&json[v + 1..]))
            .sum()
    }

    /// The value of this key's member of the top-level object of `json`, as written. None
    /// when `json` is not an object, has no such member, or ends before that member's value
    /// does (what follows the member is not looked at). Values are skipped by their
    /// structure only (strings with memchr; nothing is decoded or validated), so a nested
    /// member of the same name is never taken for it, and what is found still needs a real
    /// parse. A key written with escapes (`"us\u0061ge"`) does not match; no provider writes
    /// keys so.
    pub fn top_level_value<'a>(&self, json: &'a [u8]) -> Option<&'a [u8]> {
        self.last_member(json)
            .or_else(|| walk_to_member(json, &self.quoted[1..self.quoted.len() - 1]))
    }

    /// The providers write `usage` as the last member of an answer: when the last `"key":`
    /// is followed by its value and then only the object's closing brace, it is a member of
    /// the outermost object (a nested one would be followed by more closing brackets).
    /// Reading from the end skips the structure of everything before it.
    fn last_member<'a>(&self, json: &'a [u8]) -> Option<&'a [u8]> {
        let closing = json
            .iter()
            .rposition(|&b| !b.is_ascii_whitespace())
            .filter(|&end| json[end] == b'}')?;
        // Forwards: memmem's forward search is vectorised, its reverse one is not.
        let at = self
            .finder()
            .find_iter(&json[..closing])
            .filter(|&at| !escaped(json, at))
            .last()?;
        let colon = skip_space(json, at + self.quoted.len());
        if json.get(colon) != Some(&b':') {
            return None;
        }
        let value = skip_space(json, colon + 1);
        let end = value_end(json, value)?;
        (skip_space(json, end) == closing).then(|| &json[value..end])
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

/// Whether the byte at `at` is escaped: preceded by an odd number of backslashes.
fn escaped(json: &[u8], at: usize) -> bool {
    json[..at].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 1
}

/// Member by member through the top-level object, skipping each value by its structure.
fn walk_to_member<'a>(json: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    Members::of(json).find_map(|(name, value)| (name == key).then_some(value))
}

/// The members of a JSON object, in order: each key as written (without its quotes) and its
/// value as written. Iteration stops at the end of the object or at the first thing that is
/// not JSON; `ended_well` tells which.
pub struct Members<'a> {
    json: &'a [u8],
    /// Where the next member is looked for; None once finished.
    at: Option<usize>,
    ended_well: bool,
}

impl<'a> Members<'a> {
    pub fn of(json: &'a [u8]) -> Self {
        let open = skip_space(json, 0);
        let at = (json.get(open) == Some(&b'{')).then_some(open + 1);
        // An empty object ends here. After a member only a comma leads to another, so
        // `{"a":1,}` is not taken for a whole object.
        let empty = at.is_some_and(|at| json.get(skip_space(json, at)) == Some(&b'}'));
        Self {
            json,
            at: at.filter(|_| !empty),
            ended_well: empty,
        }
    }

    /// True when iteration reached the object's closing brace.
    pub fn ended_well(&self) -> bool {
        self.ended_well
    }

    fn member(&self, at: usize) -> Option<(&'a [u8], &'a [u8], usize)> {
        let json = self.json;
        let mut i = skip_space(json, at);
        if json.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(json, i + 1)?;
        let name = &json[i + 1..key_end];
        i = skip_space(json, key_end + 1);
        if json.get(i) != Some(&b':') {
            return None;
        }
        let value = skip_space(json, i + 1);
        let end = value_end(json, value)?;
        Some((name, &json[value..end], end))
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let at = self.at.take()?;
        let (name, value, end) = self.member(at)?;
        let after = skip_space(self.json, end);
        match self.json.get(after) {
            Some(b',') => self.at = Some(after + 1),
            Some(b'}') => self.ended_well = true,
            _ => {}
        }
        Some((name, value))
    }
}

/// A JSON number that is a whole number of at most 19 digits, as providers count tokens.
pub fn whole_number(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Where the string whose text starts at `from` ends: the index of its closing quote.
fn string_end(json: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let at = from + memchr::memchr2(b'"', b'\\', json.get(from..)?)?;
        if json[at] == b'"' {
            return Some(at);
        }
        // An escape: whatever follows the backslash is not the end.
        from = at + 2;
    }
}

/// Where the value starting at `start` ends (one past its last byte).
fn value_end(json: &[u8], start: usize) -> Option<usize> {
    match json.get(start)? {
        b'"' => string_end(json, start + 1).map(|end| end + 1),
        // Only the kind of bracket that opened the value needs counting: the other kind is
        // balanced inside it, so the next interesting byte is found with memchr3.
        &open @ (b'{' | b'[') => {
            let close = if open == b'{' { b'}' } else { b']' };
            let mut depth = 0usize;
            let mut i = start;
            loop {
                i += memchr::memchr3(b'"', open, close, json.get(i..)?)?;
                match json[i] {
                    b'"' => i = string_end(json, i + 1)?,
                    b if b == open => depth += 1,
                    _ => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                }
                i += 1;
            }
        }
        // A number, true, false or null: up to the next delimiter.
        _ => {
            let rest = &json[start..];
            let len = rest
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())
                .unwrap_or(rest.len());
            Some(start + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_top_level_member_and_never_a_nested_one() {
        let answer = br#"{"id":"x","choices":[{"message":{"content":"a \"usage\": {} } ] \\"},"usage":{"prompt_tokens":99}}],"meta":{"usage":{"prompt_tokens":98}},"n":-1.5e3,"ok":true,"usage":{"prompt_tokens":7}}"#;
        assert_eq!(
            USAGE.top_level_value(answer),
            Some(&br#"{"prompt_tokens":7}"#[..])
        );
        // The same by walking from the start, past escapes and brackets inside strings.
        assert_eq!(
            walk_to_member(answer, b"usage"),
            Some(&br#"{"prompt_tokens":7}"#[..])
        );
        assert_eq!(
            walk_to_member(br#"{"a\\":"\\","usage":{}}"#, b"usage"),
            Some(&b"{}"[..])
        );
        assert_eq!(N.top_level_value(answer), Some(&b"-1.5e3"[..]));
        assert_eq!(OK.top_level_value(answer), Some(&b"true"[..]));
        assert_eq!(ID.top_level_value(answer), Some(&br#""x""#[..]));
        // Spaces and new lines anywhere between tokens, as Python's json.dumps writes.
        let spaced = b"{ \"data\" : [ 1 , [ 2 ] ] ,\n  \"usage\" :\n {\"total_tokens\": 3} }";
        assert_eq!(
            USAGE.top_level_value(spaced),
            Some(&br#"{"total_tokens": 3}"#[..])
        );
        assert_eq!(
            USAGE.top_level_value(br#"{"usage":null}"#),
            Some(&b"null"[..])
        );
        // What follows the member is not looked at.
        assert_eq!(
            USAGE.top_level_value(br#"{"usage":{"prompt_tokens":1}"#),
            Some(&br#"{"prompt_tokens":1}"#[..])
        );
        // A key ending in an escaped backslash.
        assert_eq!(
            USAGE.top_level_value(br#"{"a\\":"\\","usage":{}}"#),
            Some(&b"{}"[..])
        );
    }

    /// When the last `usage` is a nested one, the walk finds the outer one.
    #[test]
    fn finds_a_member_that_is_not_the_last() {
        let answer = br#"{"usage":{"prompt_tokens":7},"choices":[{"x":[1,{"y":"]}"}],"usage":{"prompt_tokens":1}}]}"#;
        assert_eq!(USAGE.last_member(answer), None);
        assert_eq!(
            USAGE.top_level_value(answer),
            Some(&br#"{"prompt_tokens":7}"#[..])
        );
        // The walk reads only what it passes and gives up on what is not JSON there.
        assert_eq!(walk_to_member(br#"{"a":"cut, "usage":{}}"#, b"usage"), None);
        assert_eq!(walk_to_member(br#"{"a":1 "usage":{}}"#, b"usage"), None);
    }

    #[test]
    fn lists_the_members_of_an_object() {
        let mut m = Members::of(br#" { "a" : 1 , "b":{"c":[2,"}"]}, "d":null } "#);
        let all: Vec<(&[u8], &[u8])> = (&mut m).collect();
        assert_eq!(
            all,
            [
                (&b"a"[..], &b"1"[..]),
                (b"b", br#"{"c":[2,"}"]}"#),
                (b"d", b"null")
            ]
        );
        assert!(m.ended_well());
        let mut empty = Members::of(b"{ }");
        assert_eq!(empty.next(), None);
        assert!(empty.ended_well());
        for broken in [
            &b"{\"a\":1"[..],
            b"{\"a\":1,}",
            b"{\"a\":1 \"b\":2}",
            b"[1]",
            b"{\"a\"}",
        ] {
            let mut m = Members::of(broken);
            m.by_ref().for_each(drop);
            assert!(!m.ended_well(), "{}", String::from_utf8_lossy(broken));
        }
        assert_eq!(whole_number(b"1234"), Some(1234));
        assert_eq!(whole_number(b"18446744073709551615"), None);
        for not in [&b""[..], b"-1", b"1.0", b"1e3", b"+1", b"null", b"\"1\""] {
            assert_eq!(whole_number(not), None);
        }
    }

    #[test]
    fn gives_nothing_for_what_is_not_a_whole_object_holding_the_member() {
        for json in [
            &br#"{"choices":[{"usage":{"prompt_tokens":1}}]}"#[..],
            br#"[{"usage":{}}]"#,
            br#""usage""#,
            b"",
            b"{",
            br#"{"usage""#,
            br#"{"usage":"#,
            // A key that only ends in `"usage` (after an escaped quote).
            br#"{"say \"usage":{"prompt_tokens":1}}"#,
            br#"{"usage_note":{}}"#,
        ] {
            assert_eq!(
                USAGE.top_level_value(json),
                None,
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    static USAGE: Key = Key::new("\"usage\"");
    static CONTENT: Key = Key::new("\"content\"");
    static N: Key = Key::new("\"n\"");
    static OK: Key = Key::new("\"ok\"");
    static ID: Key = Key::new("\"id\"");

    #[test]
    fn finds_object_values_whatever_the_spacing() {
        assert!(USAGE.has_object(br#"{"choices":[],"usage":{"prompt_tokens":1}}"#));
        assert!(USAGE.has_object(b"{\"usage\" :\n {\"prompt_tokens\": 1}}"));
        assert!(!USAGE.has_object(br#"{"choices":[],"usage":null}"#));
        assert!(!USAGE.has_object(br#"{"choices":[]}"#));
        // In a string the quotes are escaped, so text that mentions the key is no key.
        assert!(!USAGE.has_object(br#"{"content":"say \"usage\":{ here"}"#));
        assert!(!USAGE.has_object(br#"{"usage_note":{"a":1}}"#));
    }

    #[test]
    fn counts_characters_of_string_values() {
        let chunk = r#"{"choices":[{"delta":{"content":"héllo \"x\"\n\u00e9"},"logprobs":{"content":[1]}}]}"#;
        // h é l l o space " x " \n é(\u00e9)
        assert_eq!(CONTENT.string_chars(chunk.as_bytes()), 11);
        assert_eq!(
            CONTENT.string_chars(br#"{"role":"assistant","content":""}"#),
            0
        );
        assert_eq!(CONTENT.string_chars(br#"{"content":null}"#), 0);
        assert_eq!(CONTENT.string_chars(b"[DONE]"), 0);
        // A string cut short by the end of the data counts what is there.
        assert_eq!(CONTENT.string_chars(br#"{"content":"abc"#), 3);
    }
}
