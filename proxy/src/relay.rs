//! The streaming response body: forwards what the upstream sent the moment it arrives (as is,
//! less the usage chunk the client did not ask for, or translated), reads usage from it on the
//! way, and emits the usage event when the stream ends, fails, or is dropped because the
//! client went away (dropping it also drops the upstream connection, which cancels the answer).
//!
//! What arrives together leaves together: each piece of the upstream's body becomes at most
//! one piece for the client, and nothing waits for more to come.

use crate::catalog::Provider;
use crate::request_meter::RequestMeter;
use crate::sse::SseParser;
use crate::tally::Tally;
use crate::translate::stream::ToOpenAi;
use crate::upstream::Chunks;
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::task::{Context, Poll};

pub enum Mode {
    /// Bytes go through untouched; events are only read.
    Raw,
    /// OpenAI stream whose client did not ask for usage: the usage-only chunk the proxy asked
    /// for is removed. Complete events go through as they came; the bytes of an event not
    /// complete yet wait for its end (the one that might be removed), which upstreams, writing
    /// whole events, never make happen.
    HideUsage { incomplete: Vec<u8> },
    /// Anthropic stream translated to OpenAI chunks.
    Translate(Box<ToOpenAi>),
}

pub struct Relay {
    upstream: Chunks,
    provider: Provider,
    mode: Mode,
    parser: SseParser,
    tally: Tally,
    metering: Option<RequestMeter>,
}

impl Relay {
    pub fn new(upstream: Chunks, provider: Provider, mode: Mode, metering: RequestMeter) -> Self {
        Self {
            upstream,
            provider,
            mode,
            parser: SseParser::default(),
            tally: Tally::default(),
            metering: Some(metering),
        }
    }

    fn finish(&mut self, status: u16) {
        if let Some(b) = self.metering.take() {
            b.finish(&self.tally, status);
        }
    }

    /// Reads one upstream chunk; returns the bytes to send (None: nothing to send yet).
    fn process(&mut self, chunk: Bytes) -> Option<Bytes> {
        let Self {
            parser,
            tally,
            mode,
            provider,
            ..
        } = self;
        match mode {
            Mode::Raw => {
                let provider = *provider;
                parser.feed(&chunk, |_, data, _| match provider {
                    Provider::OpenAi => {
                        tally.openai_event(data);
                    }
                    Provider::Anthropic => tally.anthropic_event(data),
                });
                Some(chunk)
            }
            Mode::HideUsage { incomplete } => hide_usage(parser, tally, incomplete, &chunk),
            Mode::Translate(t) => {
                let mut out = Vec::new();
                parser.feed(&chunk, |_, data, _| {
                    tally.anthropic_event(data);
                    t.event(data, &tally.tokens, &mut out);
                });
                (!out.is_empty()).then(|| Bytes::from(out))
            }
        }
    }
}

/// One chunk of an OpenAI stream whose client did not ask for usage: its complete events as
/// they came (a slice of the chunk, nearly always), less the usage-only event. The bytes after
/// the last complete event are kept in `incomplete` until their event ends.
fn hide_usage(
    parser: &mut SseParser,
    tally: &mut Tally,
    incomplete: &mut Vec<u8>,
    chunk: &Bytes,
) -> Option<Bytes> {
    // Where the usage-only event lies, if it ended in this chunk (it comes once).
    let mut hide: Option<(usize, usize)> = None;
    let complete = parser.feed(chunk, |_, data, span| {
        if tally.openai_event(data) {
            hide = Some((span.start, span.end));
        }
    });
    if complete == 0 {
        incomplete.extend_from_slice(chunk);
        return None;
    }
    let out = match hide {
        None if incomplete.is_empty() => chunk.slice(..complete),
        None => {
            let mut out = std::mem::take(incomplete);
            out.extend_from_slice(&chunk[..complete]);
            Bytes::from(out)
        }
        Some((start, end)) => {
            let mut out = Vec::with_capacity(incomplete.len() + complete);
            // When the usage event is the first to end here, what was kept is its beginning.
            if start > 0 {
                out.extend_from_slice(incomplete);
                out.extend_from_slice(&chunk[..start]);
            }
            incomplete.clear();
            out.extend_from_slice(&chunk[end..complete]);
            Bytes::from(out)
        }
    };
    incomplete.extend_from_slice(&chunk[complete..]);
    (!out.is_empty()).then_some(out)
}

impl Stream for Relay {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match Pin::new(&mut self.upstream).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Some(out) = self.process(chunk) {
                        return Poll::Ready(Some(Ok(out)));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    // The upstream broke off mid-stream: bill what it produced, then end the
                    // client's stream abruptly too (no false "done").
                    metrics::counter!("poindexter_proxy_upstream_stream_errors_total").increment(1);
                    self.finish(200);
                    return Poll::Ready(Some(Err(std::io::Error::other(format!(
                        "upstream stream failed: {e}"
                    )))));
                }
                Poll::Ready(None) => {
                    self.finish(200);
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if self.metering.is_some() {
            metrics::counter!("poindexter_proxy_client_disconnects_total").increment(1);
            self.finish(crate::request_meter::CLIENT_CLOSED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the chunks the stream arrives in, the client gets every byte but the
    /// usage-only event's, and the usage is read.
    #[test]
    fn hides_the_usage_event_wherever_the_chunks_are_cut() {
        let text = concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n",
            ": keep-alive\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
            "data: [DONE]\n\n"
        );
        let usage =
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n";
        let expected = text.replace(usage, "");
        for cut in 0..text.len() {
            for cut2 in [cut, (cut + 7).min(text.len()), text.len()] {
                let (mut parser, mut tally, mut incomplete) =
                    (SseParser::default(), Tally::default(), Vec::new());
                let mut got = Vec::new();
                for part in [&text[..cut], &text[cut..cut2], &text[cut2..]] {
                    let chunk = Bytes::copy_from_slice(part.as_bytes());
                    if let Some(out) = hide_usage(&mut parser, &mut tally, &mut incomplete, &chunk)
                    {
                        got.extend_from_slice(&out);
                    }
                }
                assert_eq!(
                    String::from_utf8(got).unwrap(),
                    expected,
                    "cuts {cut}, {cut2}"
                );
                assert!(incomplete.is_empty());
                assert_eq!((tally.tokens.input, tally.tokens.output), (3, 1));
            }
        }
    }
}
