//! Just enough RFC 2822 / MIME reading for the Gmail emulator: unfolded headers, addresses,
//! a single-part body in 7bit/8bit, base64 or quoted-printable, RFC 2047 encoded subjects.

use base64::Engine as _;

pub(crate) struct Parsed {
    pub headers: Vec<(String, String)>,
    /// The decoded text of a single-part message; for multipart, the raw body.
    pub body: String,
}

impl Parsed {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every address in To, Cc and Bcc, lower case.
    pub fn recipients(&self) -> Vec<String> {
        ["To", "Cc", "Bcc"]
            .iter()
            .filter_map(|h| self.header(h))
            .flat_map(addresses)
            .collect()
    }
}

/// `a@x, "Name" <b@y>` → `["a@x", "b@y"]`.
pub(crate) fn addresses(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|part| {
            let part = part.trim();
            let addr = match (part.find('<'), part.rfind('>')) {
                (Some(s), Some(e)) if s < e => &part[s + 1..e],
                _ => part,
            };
            let addr = addr.trim().to_ascii_lowercase();
            addr.contains('@').then_some(addr)
        })
        .collect()
}

pub(crate) fn parse(raw: &[u8]) -> Parsed {
    let text = String::from_utf8_lossy(raw).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").unwrap_or((text.as_str(), ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = headers.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let encoding = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Transfer-Encoding"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let body = match encoding.as_str() {
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| body.to_owned())
        }
        "quoted-printable" => decode_qp(body),
        _ => body.to_owned(),
    };
    Parsed { headers, body }
}

fn decode_qp(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.replace("=\n", "").into_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes RFC 2047 encoded-words (`=?UTF-8?B?...?=`) in a header value.
pub(crate) fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let parts: Vec<&str> = after.splitn(4, '?').collect();
        if parts.len() == 4 && parts[3].starts_with('=') {
            let decoded = if parts[1].eq_ignore_ascii_case("B") {
                base64::engine::general_purpose::STANDARD
                    .decode(parts[2])
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            } else {
                Some(decode_qp(&parts[2].replace('_', " ")))
            };
            if let Some(d) = decoded {
                out.push_str(&d);
                rest = &parts[3][1..];
                continue;
            }
        }
        out.push_str("=?");
        rest = after;
    }
    out.push_str(rest);
    out
}
