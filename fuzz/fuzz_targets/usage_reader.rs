//! The proxy's usage reader (a hand-written scanner that finds the top-level `usage` without
//! parsing the whole answer): never panics on any bytes, and on any JSON object it reads the
//! same counts a full parse finds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let oa = proxy::fuzz_api::openai_body(input);
    let _ = proxy::fuzz_api::anthropic_body(input);
    // As stream events, one per line, both dialects.
    let events: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    let _ = proxy::fuzz_api::stream_usage(false, &events);
    let _ = proxy::fuzz_api::stream_usage(true, &events);

    // An event taken for the usage-only chunk (hidden from a client that did not ask for
    // usage) has no choices to lose, and the usage read is the event's own.
    for line in &events {
        let (usage_only, read) = proxy::fuzz_api::openai_event(line);
        if !usage_only {
            continue;
        }
        // (Invalid UTF-8 in a string it does not read is no reason to refuse an event.)
        let Ok(Value::Object(ev)) = serde_json::from_slice::<Value>(line) else {
            continue;
        };
        let choices = ev.get("choices");
        assert!(
            choices.is_none_or(|c| c.as_array().is_some_and(Vec::is_empty)),
            "choices hidden in {}",
            String::from_utf8_lossy(line)
        );
        let usage = ev.get("usage").and_then(Value::as_object);
        let prompt = usage
            .and_then(|u| u.get("prompt_tokens"))
            .and_then(Value::as_u64);
        if let (Some(p), false) = (prompt, line.contains(&b'\\')) {
            assert_eq!(
                read.0,
                p,
                "usage misread in {}",
                String::from_utf8_lossy(line)
            );
        }
    }

    // Differential: in any object, as written (odd spacing, a key twice: the last counts, as
    // in serde_json's Value, nested usages before or after the answer's own) and canonical, the
    // scanner must find what serde_json finds.
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    let canonical = serde_json::to_vec(&Value::Object(obj.clone())).unwrap();
    let usage = obj.get("usage").and_then(Value::as_object);
    let prompt = usage
        .and_then(|u| u.get("prompt_tokens"))
        .and_then(Value::as_u64);
    let completion = usage
        .and_then(|u| u.get("completion_tokens"))
        .and_then(Value::as_u64);
    let details_ok = usage
        .and_then(|u| u.get("prompt_tokens_details"))
        .is_none_or(|d| {
            d.is_null()
                || d.get("cached_tokens")
                    .is_none_or(|c| c.is_u64() || c.is_null())
        });
    if let (Some(p), Some(c), true) = (prompt, completion, details_ok) {
        let read = proxy::fuzz_api::openai_body(&canonical);
        assert_eq!(
            (read.0, read.1),
            (p, c),
            "usage misread in {}",
            String::from_utf8_lossy(&canonical)
        );
        // As written: the same counts when it reads any (a key spelt with escapes is not
        // looked for, and a usage with a key twice is refused by its own typed parse).
        if oa.4 && !input.contains(&b'\\') {
            assert_eq!(
                (oa.0, oa.1),
                (p, c),
                "usage misread in {}",
                String::from_utf8_lossy(input)
            );
        }
    }
});
