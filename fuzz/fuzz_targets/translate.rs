//! OpenAI↔Anthropic translation: any JSON request, response or stream event is translated or
//! refused without a panic, and a translated stream is well-formed SSE whose every `data:`
//! is JSON (or the final `[DONE]`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|input: &[u8]| {
    let _ = proxy::fuzz_api::error_message(input);
    if let Ok(v) = serde_json::from_slice::<Value>(input) {
        let _ = proxy::fuzz_api::to_anthropic(&v, false);
        let _ = proxy::fuzz_api::to_anthropic(&v, true);
        let _ = proxy::fuzz_api::to_openai(&v, 7, 11);
    }
    let events: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    let out = proxy::fuzz_api::stream_to_openai(&events);
    for frame in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let data = frame
            .strip_prefix(b"data: ")
            .unwrap_or_else(|| panic!("not an SSE data line: {}", String::from_utf8_lossy(frame)));
        if data != b"[DONE]" {
            serde_json::from_slice::<Value>(data).expect("a frame's data is JSON");
        }
    }
});
