//! The browser's request to the loopback redirect (RFC 8252 §7.3) read from its request line,
//! and the small HTML page it gets back.

use reqwest::Url;

#[derive(Debug, PartialEq)]
pub enum Request {
    Callback(Redirect),
    /// Any other path, such as the browser's `/favicon.ico`.
    NotFound,
    MethodNotAllowed,
    Unreadable,
}

/// What the authorization server sent the browser back with (RFC 6749 §4.1.2).
#[derive(Debug, PartialEq)]
pub enum Redirect {
    Code {
        code: String,
        state: String,
    },
    Error {
        error: String,
        description: Option<String>,
        state: Option<String>,
    },
    /// Neither a code with its state nor an error: says what was missing.
    Malformed(&'static str),
}

/// Parses `GET /callback?... HTTP/1.1`; the headers do not matter.
pub fn parse(request_line: &str) -> Request {
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Request::Unreadable;
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Request::Unreadable;
    }
    let Ok(url) = Url::parse(&format!("http://127.0.0.1{target}")) else {
        return Request::Unreadable;
    };
    if url.path() != "/callback" {
        return Request::NotFound;
    }
    if method != "GET" {
        return Request::MethodNotAllowed;
    }
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    };
    Request::Callback(match (param("code"), param("state"), param("error")) {
        (_, state, Some(error)) => Redirect::Error {
            error,
            description: param("error_description"),
            state,
        },
        (Some(code), Some(state), None) => Redirect::Code { code, state },
        (Some(_), None, None) => Redirect::Malformed("it has a code but no state"),
        (None, _, None) => Redirect::Malformed("it has neither a code nor an error"),
    })
}

/// A whole HTTP/1.1 answer; the connection closes after it.
pub fn page(status: u16, title: &str, message: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Error",
    };
    let body = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Poindexter Cloud</title></head>\
         <body style=\"font-family:sans-serif;max-width:36em;margin:4em auto\">\
         <h1>{}</h1><p>{}</p></body></html>\n",
        escape(title),
        escape(message)
    );
    // no-referrer and no-store: the URL of this page held the authorization code.
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    [head.into_bytes(), body.into_bytes()].concat()
}

/// The server's error text is shown in the page, so it must not become markup.
fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_and_its_state() {
        assert_eq!(
            parse("GET /callback?code=abc%2F1&state=xyz HTTP/1.1"),
            Request::Callback(Redirect::Code {
                code: "abc/1".into(),
                state: "xyz".into()
            })
        );
    }

    #[test]
    fn an_error_with_or_without_description() {
        assert_eq!(
            parse("GET /callback?error=access_denied&error_description=the+user+said+no&state=s HTTP/1.1"),
            Request::Callback(Redirect::Error {
                error: "access_denied".into(),
                description: Some("the user said no".into()),
                state: Some("s".into())
            })
        );
        assert_eq!(
            parse("GET /callback?error=server_error HTTP/1.1"),
            Request::Callback(Redirect::Error {
                error: "server_error".into(),
                description: None,
                state: None
            })
        );
    }

    #[test]
    fn missing_parameters_are_malformed() {
        for line in [
            "GET /callback HTTP/1.1",
            "GET /callback?state=s HTTP/1.1",
            "GET /callback?code=&state=s HTTP/1.1",
            "GET /callback?code=c HTTP/1.1",
        ] {
            assert!(
                matches!(parse(line), Request::Callback(Redirect::Malformed(_))),
                "{line}"
            );
        }
    }

    #[test]
    fn other_paths_methods_and_garbage() {
        assert_eq!(parse("GET /favicon.ico HTTP/1.1"), Request::NotFound);
        assert_eq!(
            parse("GET /callback/x?code=c&state=s HTTP/1.1"),
            Request::NotFound
        );
        assert_eq!(parse("POST /callback HTTP/1.1"), Request::MethodNotAllowed);
        for line in [
            "",
            "GET",
            "GET /callback",
            "GET http://x/callback HTTP/1.1",
            "\u{1}\u{2}",
            "GET / SSH-2.0",
        ] {
            assert_eq!(parse(line), Request::Unreadable, "{line:?}");
        }
    }

    #[test]
    fn the_page_escapes_what_the_server_said() {
        let page = String::from_utf8(page(400, "Refused", "<script>x</script> & 'y'")).unwrap();
        assert!(page.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt; &amp; &#39;y&#39;"));
        assert!(!page.contains("<script>"));
        let (head, body) = page.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
