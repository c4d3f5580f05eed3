//! The journal's record: a usage event in a compact binary form. The journal encodes one per
//! request on the serving path, where serde_json cost ~9k instructions an event (a tenth of a
//! whole request); this costs a few hundred. Only the journal uses it: the spill file stays
//! JSON lines, for an operator to read.
//!
//! A record is a little-endian `u32` length, then: `created_at` as seconds (`i64`) and
//! nanoseconds (`u32`), exact, because replay deduplicates on `(created_at, request_id)`;
//! the two ids (16 bytes each); the five counters (`i64`); latency and status (`i32`);
//! `estimated` (one byte); then `request_id`, `model` and `provider`, each a `u16` length and
//! its UTF-8 bytes.

use crate::usage::UsageEvent;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Appends `event`'s record to `out`. Strings longer than a `u16` length are cut (none are:
/// request ids are UUIDs and model names are at most 200 bytes).
pub fn encode(event: &UsageEvent, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&event.created_at.timestamp().to_le_bytes());
    out.extend_from_slice(&event.created_at.timestamp_subsec_nanos().to_le_bytes());
    out.extend_from_slice(event.user_id.as_bytes());
    out.extend_from_slice(event.api_key_id.as_bytes());
    for n in [
        event.input_tokens,
        event.output_tokens,
        event.cache_read_tokens,
        event.cache_write_tokens,
        event.cost_microdollars,
    ] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    out.extend_from_slice(&event.latency_ms.to_le_bytes());
    out.extend_from_slice(&event.status_code.to_le_bytes());
    out.push(u8::from(event.estimated));
    for s in [&event.request_id, &event.model, &event.provider] {
        let s = truncated(s);
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    }
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Every whole record in `bytes`, in order. A record cut short (the last one, if a process
/// died inside a write) ends the reading; a record that does not decode is skipped.
pub fn decode_all(bytes: &[u8]) -> Vec<UsageEvent> {
    let mut events = Vec::new();
    let mut rest = bytes;
    while let Some((len, body)) = rest.split_first_chunk::<4>() {
        let len = u32::from_le_bytes(*len) as usize;
        let Some(record) = body.get(..len) else { break };
        match decode(record) {
            Some(e) => events.push(e),
            None => tracing::warn!("skipping an unreadable record of the usage journal"),
        }
        rest = &body[len..];
    }
    events
}

fn decode(record: &[u8]) -> Option<UsageEvent> {
    let mut r = Reader(record);
    let secs = i64::from_le_bytes(r.take()?);
    let nanos = u32::from_le_bytes(r.take()?);
    let created_at: DateTime<Utc> = DateTime::from_timestamp(secs, nanos)?;
    let user_id = Uuid::from_bytes(r.take()?);
    let api_key_id = Uuid::from_bytes(r.take()?);
    let mut n = [0i64; 5];
    for v in &mut n {
        *v = i64::from_le_bytes(r.take()?);
    }
    let latency_ms = i32::from_le_bytes(r.take()?);
    let status_code = i32::from_le_bytes(r.take()?);
    let [estimated] = r.take()?;
    let request_id = r.string()?;
    let model = r.string()?;
    let provider = r.string()?;
    if !r.0.is_empty() || estimated > 1 {
        return None;
    }
    Some(UsageEvent {
        request_id,
        user_id,
        api_key_id,
        model,
        provider,
        input_tokens: n[0],
        output_tokens: n[1],
        cache_read_tokens: n[2],
        cache_write_tokens: n[3],
        cost_microdollars: n[4],
        latency_ms,
        status_code,
        estimated: estimated == 1,
        created_at,
    })
}

fn truncated(s: &str) -> &str {
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::from(u16::from_le_bytes(self.take()?));
        let bytes = self.0.get(..len)?;
        self.0 = &self.0[len..];
        String::from_utf8(bytes.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, estimated: bool) -> UsageEvent {
        UsageEvent {
            request_id: id.into(),
            user_id: Uuid::new_v4(),
            api_key_id: Uuid::new_v4(),
            model: "claude-sonnet-4-5-20250929".into(),
            provider: "anthropic".into(),
            input_tokens: 120_000,
            output_tokens: -1,
            cache_read_tokens: i64::MAX,
            cache_write_tokens: 7,
            cost_microdollars: 42,
            latency_ms: i32::MAX,
            status_code: 499,
            estimated,
            created_at: DateTime::from_timestamp(1_796_000_000, 123_456_789).unwrap(),
        }
    }

    #[test]
    fn every_field_comes_back_exactly_and_a_cut_off_last_record_is_dropped() {
        let events = [event("a", false), event("b", true), event("ü", false)];
        let mut bytes = Vec::new();
        for e in &events {
            encode(e, &mut bytes);
        }
        assert_eq!(decode_all(&bytes), events);
        // A process killed inside the last write leaves a prefix of its record.
        for cut in 1..bytes.len() {
            let whole = decode_all(&bytes[..cut]);
            assert_eq!(whole, events[..whole.len()], "cut at {cut}");
        }
    }

    #[test]
    fn a_record_with_a_bad_field_is_skipped_and_the_next_one_read() {
        let mut bytes = Vec::new();
        encode(&event("a", false), &mut bytes);
        let first = bytes.len();
        encode(&event("b", false), &mut bytes);
        bytes[first - 1] = 0xff; // the provider's last byte: no longer UTF-8
        let read = decode_all(&bytes);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].request_id, "b");
    }
}
