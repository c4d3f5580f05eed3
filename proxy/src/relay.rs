//! The streaming response body: forwards each upstream chunk the moment it arrives (as is, or
//! re-framed when usage chunks must be hidden or the stream translated), reads usage from it on
//! the way, and emits the usage event when the stream ends, fails, or is dropped because the
//! client went away (dropping it also drops the upstream connection, which cancels the answer).

use crate::billing::Billing;
use crate::catalog::Provider;
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
    /// for is removed.
    HideUsage,
    /// Anthropic stream translated to OpenAI chunks.
    Translate(Box<ToOpenAi>),
}

pub struct Relay {
    upstream: Chunks,
    provider: Provider,
    mode: Mode,
    parser: SseParser,
    tally: Tally,
    billing: Option<Billing>,
}

impl Relay {
    pub fn new(upstream: Chunks, provider: Provider, mode: Mode, billing: Billing) -> Self {
        Self {
            upstream,
            provider,
            mode,
            parser: SseParser::default(),
            tally: Tally::default(),
            billing: Some(billing),
        }
    }

    fn finish(&mut self, status: u16) {
        if let Some(b) = self.billing.take() {
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
                parser.feed(&chunk, |_, data| match provider {
                    Provider::OpenAi => {
                        tally.openai_event(data);
                    }
                    Provider::Anthropic => tally.anthropic_event(data),
                });
                Some(chunk)
            }
            Mode::HideUsage => {
                let mut out = Vec::with_capacity(chunk.len());
                parser.feed(&chunk, |event, data| {
                    if !tally.openai_event(data) {
                        if !event.is_empty() {
                            out.extend_from_slice(b"event: ");
                            out.extend_from_slice(event);
                            out.push(b'\n');
                        }
                        out.extend_from_slice(b"data: ");
                        out.extend_from_slice(data);
                        out.extend_from_slice(b"\n\n");
                    }
                });
                (!out.is_empty()).then(|| Bytes::from(out))
            }
            Mode::Translate(t) => {
                let mut out = Vec::new();
                parser.feed(&chunk, |_, data| {
                    tally.anthropic_event(data);
                    t.event(data, &tally.tokens, &mut out);
                });
                (!out.is_empty()).then(|| Bytes::from(out))
            }
        }
    }
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
        if self.billing.is_some() {
            metrics::counter!("poindexter_proxy_client_disconnects_total").increment(1);
            self.finish(crate::billing::CLIENT_CLOSED);
        }
    }
}
