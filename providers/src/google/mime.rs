//! RFC 2822 / MIME text for a plain-text mail, as Gmail's `raw` field takes it.

use base64::Engine as _;

/// Renders a single-part `text/plain; charset=UTF-8` message. The body is base64-encoded so
/// any UTF-8 text and any line length are transported intact.
pub(crate) fn render(
    from: &str,
    to: &[String],
    cc: &[String],
    subject: &str,
    body: &str,
) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    out.push_str(&format!("From: {}\r\n", strip_crlf(from)));
    out.push_str(&format!("To: {}\r\n", join(to)));
    if !cc.is_empty() {
        out.push_str(&format!("Cc: {}\r\n", join(cc)));
    }
    out.push_str(&format!("Subject: {}\r\n", encode_header(subject)));
    out.push_str(&format!("Date: {}\r\n", chrono::Utc::now().to_rfc2822()));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=\"UTF-8\"\r\n");
    out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
    let encoded = b64.encode(body.as_bytes());
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out
}

fn join(addrs: &[String]) -> String {
    addrs
        .iter()
        .map(|a| strip_crlf(a))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Header values never carry line breaks (no header injection).
fn strip_crlf(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// RFC 2047 encoded-word for non-ASCII subjects.
fn encode_header(s: &str) -> String {
    let s = strip_crlf(s);
    if s.is_ascii() {
        s
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
        )
    }
}

/// Decodes RFC 2047 encoded-words (`=?UTF-8?B?...?=`, `=?UTF-8?Q?...?=`) in a header value.
pub(crate) fn decode_header(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        out.push_str(&rest[..start]);
        let candidate = &rest[start + 2..];
        let parts: Vec<&str> = candidate.splitn(4, '?').collect();
        if parts.len() == 4 && parts[3].starts_with('=') {
            let (enc, text) = (parts[1], parts[2]);
            let decoded = match enc {
                "B" | "b" => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).into_owned()),
                _ => Some(text.replace('_', " ")),
            };
            if let Some(d) = decoded {
                out.push_str(&d);
                rest = &parts[3][1..];
                continue;
            }
        }
        out.push_str("=?");
        rest = candidate;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_subjects_round_trip() {
        let encoded = encode_header("Grüße");
        assert!(encoded.is_ascii());
        assert_eq!(decode_header(&encoded), "Grüße");
    }

    #[test]
    fn header_injection_is_neutralised() {
        let text = render("a@x", &["b@x\r\nBcc: evil@x".into()], &[], "s", "b");
        assert!(!text.contains("\r\nBcc:"));
    }
}
