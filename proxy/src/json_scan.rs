//! Looks into a stream event's JSON without parsing it, where a parse would cost more than
//! relaying the event: whether it carries a usage object and needs a real parse (most carry a
//! few characters of text and nothing else), and how many characters of text it carries
//! (which only estimates a stream's output when its usage never came). One pass over the
//! event, string by string: no tree, no allocation.
//!
//! A quote inside a JSON string is always escaped, so a string followed by `:` is an object
//! key, and every other string is a value to skip.

use memchr::{memchr, memchr2};

/// What one event holds, as far as the meter cares.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// Some value of the object key is an object. Never false when one is: a true answer only
    /// costs the caller a real parse.
    pub has_object: bool,
    /// Characters in the string values of the text keys (an escape sequence counts as one).
    pub text_chars: u64,
}

/// Scans `json` once for `object_key`'s object values and `text_keys`' string values, at any
/// depth. Keys are given without quotes.
pub fn scan(json: &[u8], object_key: &[u8], text_keys: &[&[u8]]) -> Scan {
    let mut found = Scan::default();
    let mut i = 0;
    while let Some(open) = memchr(b'"', &json[i..]) {
        let start = i + open + 1;
        let Some(end) = string_end(json, start) else {
            break;
        };
        i = end + 1;
        let after = skip_space(json, i);
        if json.get(after) != Some(&b':') {
            continue;
        }
        let key = &json[start..end];
        let value = skip_space(json, after + 1);
        match json.get(value) {
            Some(b'{') if key == object_key => found.has_object = true,
            Some(b'"') if text_keys.contains(&key) => {
                let (chars, close) = string_chars(json, value + 1);
                found.text_chars += chars;
                i = close.map_or(json.len(), |c| c + 1);
            }
            _ => i = value,
        }
    }
    found
}

fn skip_space(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// Where the string whose text starts at `start` has its closing quote, if it has one.
fn string_end(json: &[u8], mut i: usize) -> Option<usize> {
    loop {
        i += memchr2(b'"', b'\\', json.get(i..)?)?;
        if json[i] == b'"' {
            return Some(i);
        }
        i += 2;
    }
}

/// Characters of the JSON string whose text starts at `start`, and where its closing quote
/// is (none when the data ends first: what is there is counted).
fn string_chars(json: &[u8], mut i: usize) -> (u64, Option<usize>) {
    let mut chars = 0;
    while let Some(rest) = json.get(i..) {
        let stop = memchr2(b'"', b'\\', rest);
        chars += plain_chars(&rest[..stop.unwrap_or(rest.len())]);
        let Some(stop) = stop else {
            break;
        };
        i += stop;
        if json[i] == b'"' {
            return (chars, Some(i));
        }
        chars += 1;
        i += if json.get(i + 1) == Some(&b'u') { 6 } else { 2 };
    }
    (chars, None)
}

/// Characters, not bytes, of UTF-8 text without escapes: most text is ASCII, one byte each.
fn plain_chars(text: &[u8]) -> u64 {
    if text.is_ascii() {
        return text.len() as u64;
    }
    text.iter().filter(|&&b| b & 0xC0 != 0x80).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(json: &[u8]) -> bool {
        scan(json, b"usage", &[]).has_object
    }

    fn content(json: &[u8]) -> u64 {
        scan(json, b"usage", &[b"content"]).text_chars
    }

    #[test]
    fn finds_object_values_whatever_the_spacing() {
        assert!(usage(br#"{"choices":[],"usage":{"prompt_tokens":1}}"#));
        assert!(usage(b"{\"usage\" :\n {\"prompt_tokens\": 1}}"));
        assert!(usage(br#"{"a":{"b":[{"usage":{"x":1}}]}}"#));
        assert!(!usage(br#"{"choices":[],"usage":null}"#));
        assert!(!usage(br#"{"choices":[]}"#));
        // In a string the quotes are escaped, so text that mentions the key is no key.
        assert!(!usage(br#"{"content":"say \"usage\":{ here"}"#));
        assert!(!usage(br#"{"note":"\\","x":"usage"}"#));
        assert!(!usage(br#"{"usage_note":{"a":1}}"#));
        assert!(!usage(br#"{"my\"usage":{"a":1}}"#));
    }

    #[test]
    fn counts_characters_of_string_values() {
        let chunk = r#"{"choices":[{"delta":{"content":"héllo \"x\"\n\u00e9"},"logprobs":{"content":[1]}}]}"#;
        // h é l l o space " x " \n é(\u00e9)
        assert_eq!(content(chunk.as_bytes()), 11);
        assert_eq!(content(br#"{"role":"assistant","content":""}"#), 0);
        assert_eq!(content(br#"{"content":null}"#), 0);
        assert_eq!(content(b"[DONE]"), 0);
        // A value that looks like a key is a value.
        assert_eq!(content(br#"{"x":"content","content":"ab"}"#), 2);
        // A string cut short by the end of the data counts what is there.
        assert_eq!(content(br#"{"content":"abc"#), 3);
        assert_eq!(content(br#"{"content":"ab\"#), 3);
        // Several keys, each counted wherever it is.
        let two = scan(
            br#"{"content":"ab","tool_calls":[{"function":{"arguments":"{\"a\":1}"}}]}"#,
            b"usage",
            &[b"content", b"arguments"],
        );
        assert_eq!(two.text_chars, 2 + 7);
    }

    #[test]
    fn never_reads_past_the_end() {
        for json in [
            &b"\""[..],
            b"\"\\",
            b"\"a\":",
            b"\"a\" :  ",
            b"{\"content\":\"\\u00",
        ] {
            let _ = scan(json, b"usage", &[b"content"]);
        }
    }
}
