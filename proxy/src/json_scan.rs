//! Looks into a stream event's JSON without parsing it, where a parse would cost more than
//! relaying the event: whether it carries a usage object and needs a real parse (most carry a
//! few characters of text and nothing else), and how many characters of text it carries
//! (which only estimates a stream's output when its usage never came). This halves what a
//! stream costs the proxy.
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

    static USAGE: Key = Key::new("\"usage\"");
    static CONTENT: Key = Key::new("\"content\"");

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
