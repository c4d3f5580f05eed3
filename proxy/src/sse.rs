//! Incremental server-sent-events parser: feed it bytes as they arrive, it calls back once
//! per complete event with the event name and the data. Holds only the unfinished line.

#[derive(Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
}

impl SseParser {
    pub fn feed(&mut self, mut chunk: &[u8], mut on_event: impl FnMut(&[u8], &[u8])) {
        // memchr: a stream is scanned byte by byte otherwise, which cost more than relaying it.
        while let Some(nl) = memchr::memchr(b'\n', chunk) {
            let (head, rest) = chunk.split_at(nl);
            chunk = &rest[1..];
            if self.line.is_empty() {
                self.line_done(head, &mut on_event);
            } else {
                self.line.extend_from_slice(head);
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, &mut on_event);
                self.line = line;
                self.line.clear();
            }
        }
        self.line.extend_from_slice(chunk);
    }

    fn line_done(&mut self, line: &[u8], on_event: &mut impl FnMut(&[u8], &[u8])) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                on_event(&self.event, &self.data);
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(0) => return, // a comment
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_arbitrary_chunk_boundaries() {
        let text = b"event: a\ndata: {\"x\":1}\n\n: comment\ndata: two\r\ndata: lines\r\n\r\ndata: [DONE]\n\n";
        for cut in 1..text.len() {
            let mut p = SseParser::default();
            let mut got: Vec<(String, String)> = Vec::new();
            for part in [&text[..cut], &text[cut..]] {
                p.feed(part, |e, d| {
                    got.push((
                        String::from_utf8_lossy(e).into(),
                        String::from_utf8_lossy(d).into(),
                    ))
                });
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
        }
    }
}
