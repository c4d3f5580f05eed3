//! The steps Dex takes to connect, each printed as it completes. A failure names its step.

use super::args::Options;
use super::authorize::{self, Metadata};
use super::identity::{self, Seen};
use super::loopback::Loopback;
use super::pkce::{self, Pkce};
use super::tokens::TokenClient;
use super::{answer, chat};
use anyhow::{anyhow, Context, Result};
use std::time::Duration;

pub struct Failure {
    pub step: &'static str,
    pub error: anyhow::Error,
}

trait Step<T> {
    fn step(self, step: &'static str) -> Result<T, Failure>;
}

impl<T> Step<T> for Result<T> {
    fn step(self, step: &'static str) -> Result<T, Failure> {
        self.map_err(|error| Failure { step, error })
    }
}

fn fail<T>(step: &'static str, error: anyhow::Error) -> Result<T, Failure> {
    Err(Failure { step, error })
}

/// `say` takes each line of progress; the command prints them.
pub async fn run(opts: &Options, say: &dyn Fn(&str)) -> Result<(), Failure> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .user_agent(concat!("poindexter-connect/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
        .step("setup")?;
    let client_id = opts.client_id.clone().unwrap_or_else(pkce::client_id);

    let metadata = fetch_metadata(&http, &opts.api).await.step("metadata")?;
    let revocation_endpoint = match (&metadata.revocation_endpoint, opts.revoke) {
        // Known before the browser is involved, so said before.
        (None, true) => fail(
            "metadata",
            anyhow!("--revoke needs a revocation_endpoint, and the server's metadata has none"),
        )?,
        (endpoint, _) => endpoint.clone(),
    };
    let loopback = Loopback::bind().await.step("callback listener")?;
    let redirect_uri = loopback.redirect_uri().to_owned();
    let pkce = Pkce::generate();
    let state = pkce::state();
    let request = authorize::Request {
        client_id: &client_id,
        redirect_uri: &redirect_uri,
        state: &state,
        code_challenge: &pkce.challenge,
    };
    let url = authorize::url(&metadata.authorization_endpoint, &request).step("metadata")?;
    say(&format!(
        "Open this URL to connect Dex ({client_id}) to Poindexter Cloud:"
    ));
    say(&url);
    if opts.open_browser {
        open_browser(&url);
    }
    say(&format!(
        "Waiting for the browser to come back (up to {} s)...",
        opts.timeout.as_secs()
    ));
    let authorized = loopback
        .wait(&state, opts.timeout)
        .await
        .step("authorization")?;
    say("Authorized: the browser came back with a code");

    let tokens = TokenClient {
        http: &http,
        token_endpoint: &metadata.token_endpoint,
        client_id: &client_id,
    };
    // The browser's tab waits for this, so it says "connected" only once it is true.
    let first = match tokens
        .exchange(&authorized.code, &redirect_uri, &pkce.verifier)
        .await
    {
        Ok(t) => {
            authorized.reply.connected().await;
            t
        }
        Err(e) => {
            authorized.reply.failed(&format!("{e:#}")).await;
            return fail("token exchange", e);
        }
    };
    match first.expires_in {
        Some(secs) => say(&format!("Connected: access token expires in {secs} s")),
        None => say("Connected: the server did not say when the access token expires"),
    }

    match identity::fetch(&http, &opts.api, &first.access)
        .await
        .step("identity")?
    {
        Seen::Identity(line) => say(&format!("Identity: {line}")),
        Seen::NotYet(said) => say(&format!("Identity: none yet ({said})")),
        Seen::Refused(said) => fail(
            "identity",
            anyhow!("the new access token was refused: {said}"),
        )?,
    }

    let reply = chat::hello(&http, &opts.proxy, &first.access)
        .await
        .step("AI request")?;
    say(&format!("AI ({}): {}", chat::MODEL, reply.text));
    say(&format!("AI usage: {}", reply.usage));

    let second = tokens.refresh(&first.refresh).await.step("refresh")?;
    if let Seen::Refused(said) = identity::fetch(&http, &opts.api, &second.access)
        .await
        .step("refresh")?
    {
        fail(
            "refresh",
            anyhow!("the refreshed access token was refused: {said}"),
        )?;
    }
    say("Refreshed: new access token works");

    if let Some(endpoint) = revocation_endpoint.filter(|_| opts.revoke) {
        tokens
            .revoke(&endpoint, &second.refresh)
            .await
            .step("revoke")?;
        match identity::fetch(&http, &opts.api, &second.access)
            .await
            .step("revoke")?
        {
            Seen::Refused(_) => say("Revoked: the grant is closed"),
            _ => fail("revoke", anyhow!("the server accepted the revocation, but /v1/identity still accepts the access token"))?,
        }
    }
    Ok(())
}

async fn fetch_metadata(http: &reqwest::Client, api: &str) -> Result<Metadata> {
    let req = http.get(format!("{api}/.well-known/oauth-authorization-server"));
    Metadata::from_json(&answer::send(req, "api").await?.json()?)
}

fn open_browser(url: &str) {
    use std::process::{Command, Stdio};
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    // Without a browser the printed URL is enough, so a failure here is no error. The opener's
    // output is kept off stdout, which carries only this command's lines.
    if let Ok(mut child) = Command::new(opener)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        // Reaped on a thread so that it does not linger as a zombie while this waits.
        std::thread::spawn(move || child.wait());
    }
}
