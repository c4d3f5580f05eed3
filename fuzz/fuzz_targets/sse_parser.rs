//! The proxy's incremental SSE parser: however a stream is cut into chunks, the events are
//! those of the whole stream read at once, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // The first byte seeds where the stream is cut; the rest is the stream.
    let Some((&seed, stream)) = input.split_first() else {
        return;
    };
    let whole = proxy::fuzz_api::sse_events(&[stream]);
    let mut pieces = Vec::new();
    let mut rest = stream;
    let mut step = usize::from(seed % 7) + 1;
    while !rest.is_empty() {
        let n = step.min(rest.len());
        pieces.push(&rest[..n]);
        rest = &rest[n..];
        step = (step * 5 + usize::from(seed)) % 11 + 1;
    }
    let cut = proxy::fuzz_api::sse_events(&pieces);
    assert_eq!(whole, cut, "events depend on where the stream was cut");
    // One byte at a time, the hardest cut.
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(whole, proxy::fuzz_api::sse_events(&bytes));
});
