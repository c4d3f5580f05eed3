//! The listener the browser is redirected to: 127.0.0.1 on a port the OS picks (RFC 8252 §7.3
//! lets the port vary). It answers every request until the redirect for this attempt arrives;
//! the browser's tab then waits until the terminal knows whether the code was good.

use super::callback::{self, Redirect, Request};
use anyhow::{anyhow, bail, Context, Result};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const MAX_HEAD: usize = 16 * 1024;
/// Browsers open connections they may never use; each gets this long to send its request, on
/// its own task so that it holds up no other.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Loopback {
    listener: TcpListener,
    redirect_uri: String,
}

/// The code of this attempt, and the browser's tab still waiting for its page.
pub struct Authorized {
    pub code: String,
    pub reply: Reply,
}

pub struct Reply(TcpStream);

impl Loopback {
    pub async fn bind() -> Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot listen on 127.0.0.1 for the browser's redirect")?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
        })
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The listener closes when this returns; later requests are refused.
    pub async fn wait(self, state: &str, timeout: Duration) -> Result<Authorized> {
        match tokio::time::timeout(timeout, self.serve(state)).await {
            Ok(outcome) => outcome,
            Err(_) => bail!(
                "no answer from the browser within {} s: open the URL above and approve, or allow more time with --timeout-secs",
                timeout.as_secs()
            ),
        }
    }

    async fn serve(&self, state: &str) -> Result<Authorized> {
        // Dropped on return, which stops the requests still being read.
        let mut reading = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, _) = accepted.context("cannot accept the browser's connection")?;
                    reading.spawn(read_request(stream));
                }
                Some(read) = reading.join_next(), if !reading.is_empty() => {
                    if let Ok(Some((redirect, stream))) = read {
                        return settle(redirect, stream, state).await;
                    }
                }
            }
        }
    }
}

/// Answers and closes any request that is not the redirect to `/callback`.
async fn read_request(mut stream: TcpStream) -> Option<(Redirect, TcpStream)> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .ok()??;
    let answer = match callback::parse(head.lines().next().unwrap_or_default()) {
        Request::Callback(redirect) => return Some((redirect, stream)),
        Request::NotFound => callback::page(
            404,
            "Not found",
            "This address only receives Poindexter Cloud's redirect to /callback.",
        ),
        Request::MethodNotAllowed => {
            callback::page(405, "Method not allowed", "The redirect is a GET.")
        }
        Request::Unreadable => callback::page(400, "Bad request", "Not an HTTP/1.1 request."),
    };
    send(stream, &answer).await;
    None
}

/// Reads up to the blank line: a GET has no body, and closing with unread bytes would reset the
/// connection before the browser reads the page.
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

async fn settle(redirect: Redirect, stream: TcpStream, expected: &str) -> Result<Authorized> {
    // Constant time, so that timing does not tell how much of a guessed state was right.
    let ours = |state: &str| bool::from(state.as_bytes().ct_eq(expected.as_bytes()));
    let failure = match redirect {
        Redirect::Code { code, state } if ours(&state) => {
            return Ok(Authorized {
                code,
                reply: Reply(stream),
            })
        }
        Redirect::Code { .. } => {
            "the redirect's state does not match this attempt, so its code was not used; start again".to_owned()
        }
        Redirect::Error {
            error,
            description,
            state,
        } => {
            let said = description.map_or(error.clone(), |d| format!("{error} ({d})"));
            if state.is_some_and(|s| ours(&s)) {
                format!("the authorization was refused: {said}")
            } else {
                format!("a redirect with an error ({said}) came back without this attempt's state")
            }
        }
        Redirect::Malformed(what) => format!("the redirect is not usable: {what}"),
    };
    Reply(stream).failed(&failure).await;
    Err(anyhow!(failure))
}

impl Reply {
    pub async fn connected(self) {
        let page = callback::page(
            200,
            "Poindexter Cloud is connected — you can close this tab",
            "Dex holds its token now; the terminal shows what it can do with it.",
        );
        send(self.0, &page).await;
    }

    pub async fn failed(self, why: &str) {
        let page = callback::page(
            400,
            "Poindexter Cloud is not connected",
            &format!("{why}. You can close this tab."),
        );
        send(self.0, &page).await;
    }
}

async fn send(mut stream: TcpStream, page: &[u8]) {
    // Errors are dropped on purpose: a browser that went away cannot be told anything, and the
    // terminal reports the outcome either way.
    let _ = tokio::time::timeout(WRITE_TIMEOUT, async {
        let _ = stream.write_all(page).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    async fn start(timeout: Duration) -> (String, tokio::task::JoinHandle<Result<Authorized>>) {
        let loopback = Loopback::bind().await.unwrap();
        let uri = loopback.redirect_uri().to_owned();
        assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"));
        let waiting = tokio::spawn(async move { loopback.wait("the-state", timeout).await });
        (uri, waiting)
    }

    #[tokio::test]
    async fn the_code_comes_back_and_the_tab_hears_it_worked() {
        let (uri, waiting) = start(Duration::from_secs(10)).await;
        // A connection that never speaks holds nothing up.
        let _idle = TcpStream::connect(
            uri.trim_start_matches("http://")
                .trim_end_matches("/callback"),
        )
        .await
        .unwrap();
        let favicon = client()
            .get(uri.replace("/callback", "/favicon.ico"))
            .send()
            .await
            .unwrap();
        assert_eq!(favicon.status(), 404);

        let browser = tokio::spawn(
            client()
                .get(format!("{uri}?code=the%2Bcode&state=the-state"))
                .send(),
        );
        let authorized = waiting.await.unwrap().unwrap();
        assert_eq!(authorized.code, "the+code");
        assert!(!browser.is_finished(), "the tab waits for the outcome");
        authorized.reply.connected().await;
        let page = browser.await.unwrap().unwrap();
        assert_eq!(page.status(), 200);
        let body = page.text().await.unwrap();
        assert!(body.contains("Poindexter Cloud is connected — you can close this tab"));
        // The listener is gone once the code is in.
        assert!(client().get(&uri).send().await.is_err());
    }

    #[tokio::test]
    async fn a_refusal_shows_in_the_tab_and_ends_the_wait() {
        let (uri, waiting) = start(Duration::from_secs(10)).await;
        let page = client()
            .get(format!(
                "{uri}?error=access_denied&error_description=the+user+said+%3Cno%3E&state=the-state"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 400);
        assert!(page
            .text()
            .await
            .unwrap()
            .contains("access_denied (the user said &lt;no&gt;)"));
        let e = waiting.await.unwrap().err().unwrap();
        assert_eq!(
            e.to_string(),
            "the authorization was refused: access_denied (the user said <no>)"
        );
    }

    #[tokio::test]
    async fn a_foreign_state_is_refused() {
        let (uri, waiting) = start(Duration::from_secs(10)).await;
        let page = client()
            .get(format!("{uri}?code=c&state=not-the-state"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 400);
        let e = waiting.await.unwrap().err().unwrap();
        assert!(e.to_string().contains("state does not match"), "{e}");
    }

    #[tokio::test]
    async fn waiting_ends_after_the_timeout() {
        let (_uri, waiting) = start(Duration::from_secs(1)).await;
        let e = waiting.await.unwrap().err().unwrap();
        assert!(
            e.to_string()
                .starts_with("no answer from the browser within 1 s"),
            "{e}"
        );
    }
}
