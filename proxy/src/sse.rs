//! Incremental server-sent-events parser: feed it bytes as they arrive, it calls back once
//! per complete event with the event name, the data and where in the fed bytes the event
//! lies. Holds only the unfinished line.

use std::ops::Range;

#[derive(Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
}

impl SseParser {
    /// Calls `on_event(name, data, span)` for each event completed by `chunk`, `span` being
    /// where it lies in `chunk`: from the end of the blank line before it (0 when it began in
    /// an earlier chunk) to the end of the blank line that ended it. Returns the offset just
    /// past the last blank line in `chunk` (0 if none): what follows belongs to an event that
    /// is not complete yet.
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(&[u8], &[u8], Range<usize>),
    ) -> usize {
        let mut at = 0;
        let mut complete = 0;
        // memchr: a stream is scanned byte by byte otherwise, which cost more than relaying it.
        while let Some(nl) = memchr::memchr(b'\n', &chunk[at..]) {
            let head = &chunk[at..at + nl];
            at += nl + 1;
            let blank = if self.line.is_empty() {
                self.line_done(head, complete..at, &mut on_event)
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                let blank = self.line_done(&line, complete..at, &mut on_event);
                self.line = line;
                self.line.clear();
                blank
            };
            if blank {
                complete = at;
            }
        }
        self.line.extend_from_slice(&chunk[at..]);
        complete
    }

    /// True for the blank line that ends an event.
    fn line_done(
        &mut self,
        line: &[u8],
        span: Range<usize>,
        on_event: &mut impl FnMut(&[u8], &[u8], Range<usize>),
    ) -> bool {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                on_event(&self.event, &self.data, span);
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return true;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(0) => return false, // a comment
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            _ => {}
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_arbitrary_chunk_boundaries() {
        let text = b"event: a\ndata: {\"x\":1}\n\n: comment\ndata: two\r\ndata: lines\r\n\r\ndata: [DONE]\n\n";
        // Where each event's blank line ends.
        let ends = [24, 60, text.len()];
        for cut in 1..text.len() {
            let mut p = SseParser::default();
            let mut got: Vec<(String, String)> = Vec::new();
            let mut ends_seen = Vec::new();
            for (offset, part) in [(0, &text[..cut]), (cut, &text[cut..])] {
                let complete = p.feed(part, |e, d, span| {
                    got.push((
                        String::from_utf8_lossy(e).into(),
                        String::from_utf8_lossy(d).into(),
                    ));
                    ends_seen.push(offset + span.end);
                });
                // Whatever follows the last blank line belongs to an event still under way.
                let last_end = ends
                    .iter()
                    .rev()
                    .find(|&&e| e > offset && e <= offset + part.len())
                    .map_or(0, |e| e - offset);
                assert_eq!(complete, last_end, "cut at {cut}");
            }
            assert_eq!(
                got,
                vec![
                    ("a".into(), "{\"x\":1}".into()),
                    ("".into(), "two\nlines".into()),
                    ("".into(), "[DONE]".into())
                ],
                "cut at {cut}"
            );
            assert_eq!(ends_seen, ends, "cut at {cut}");
        }
    }
}
