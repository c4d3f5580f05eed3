//! The command line of `poindexter connect`; an error is a sentence for the user.

use std::time::Duration;

pub const USAGE: &str = "usage: poindexter connect [--api URL] [--proxy URL] [--client-id dex-xxxxxxxx] [--no-open] [--revoke] [--timeout-secs N]

Connects a Dex instance to Poindexter Cloud the way Dex does it: OAuth 2.0 authorization code
with PKCE through your browser, then reads the identity, makes one AI request through the
proxy, refreshes the token, and with --revoke revokes the grant.

  --api URL           the api (default: $POINDEXTER_API_URL or http://127.0.0.1:3000)
  --proxy URL         the AI proxy (default: $POINDEXTER_PROXY_URL or http://127.0.0.1:3001)
  --client-id ID      the Dex instance id (default: a random dex-xxxxxxxx)
  --no-open           print the URL only; do not start a browser
  --revoke            revoke the grant at the end and check the token no longer works
  --timeout-secs N    how long to wait for the browser (default 600)";

pub struct Options {
    pub api: String,
    pub proxy: String,
    pub client_id: Option<String>,
    pub open_browser: bool,
    pub revoke: bool,
    pub timeout: Duration,
}

pub enum Parsed {
    Run(Options),
    Help,
}

/// `env` is the environment lookup, a parameter so tests do not depend on the real one.
pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Parsed, String> {
    let mut opts = Options {
        api: env("POINDEXTER_API_URL").unwrap_or_else(|| "http://127.0.0.1:3000".into()),
        proxy: env("POINDEXTER_PROXY_URL").unwrap_or_else(|| "http://127.0.0.1:3001".into()),
        client_id: None,
        open_browser: true,
        revoke: false,
        timeout: Duration::from_secs(600),
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        // Both `--api URL` and `--api=URL`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| rest.next().cloned())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--api" => opts.api = value()?,
            "--proxy" => opts.proxy = value()?,
            "--client-id" => {
                let id = value()?;
                if !super::pkce::is_client_id(&id) {
                    return Err(format!(
                        "--client-id `{id}` is not a Dex instance id: `dex-` and 8 lowercase hex digits, like dex-a1b2c3d4"
                    ));
                }
                opts.client_id = Some(id);
            }
            "--timeout-secs" => {
                let v = value()?;
                let secs: u64 = v.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("--timeout-secs `{v}` is not a positive number of seconds")
                })?;
                opts.timeout = Duration::from_secs(secs);
            }
            "--no-open" if inline.is_none() => opts.open_browser = false,
            "--revoke" if inline.is_none() => opts.revoke = true,
            "-h" | "--help" => return Ok(Parsed::Help),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    for (name, url) in [("--api", &mut opts.api), ("--proxy", &mut opts.proxy)] {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("{name} `{url}` is not an http(s) URL"));
        }
        // Paths are appended to it.
        while url.ends_with('/') {
            url.pop();
        }
    }
    Ok(Parsed::Run(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Options, String> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let lookup = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        match parse(&args, lookup)? {
            Parsed::Run(o) => Ok(o),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn defaults_come_from_the_environment_then_localhost() {
        let o = run(&[], &[]).unwrap();
        assert_eq!(o.api, "http://127.0.0.1:3000");
        assert_eq!(o.proxy, "http://127.0.0.1:3001");
        assert!(o.open_browser && !o.revoke && o.client_id.is_none());
        assert_eq!(o.timeout, Duration::from_secs(600));
        let o = run(&[], &[("POINDEXTER_API_URL", "https://api.example/")]).unwrap();
        assert_eq!(o.api, "https://api.example");
    }

    #[test]
    fn flags_override_and_are_checked() {
        let o = run(
            &[
                "--api=http://a:1/",
                "--proxy",
                "http://p:2",
                "--client-id",
                "dex-0badcafe",
                "--no-open",
                "--revoke",
                "--timeout-secs",
                "5",
            ],
            &[("POINDEXTER_API_URL", "http://ignored")],
        )
        .unwrap();
        assert_eq!(
            (o.api.as_str(), o.proxy.as_str()),
            ("http://a:1", "http://p:2")
        );
        assert_eq!(o.client_id.as_deref(), Some("dex-0badcafe"));
        assert!(!o.open_browser && o.revoke);
        assert_eq!(o.timeout, Duration::from_secs(5));

        for (args, says) in [
            (&["--client-id", "dex-XYZ"][..], "not a Dex instance id"),
            (&["--timeout-secs", "0"][..], "positive number"),
            (&["--api"][..], "--api needs a value"),
            (&["--api", "ftp://x"][..], "not an http(s) URL"),
            (&["--frobnicate"][..], "unknown argument `--frobnicate`"),
            (&["--revoke=yes"][..], "unknown argument `--revoke`"),
        ] {
            match run(args, &[]) {
                Err(e) => assert!(e.contains(says), "{args:?}: {e}"),
                Ok(_) => panic!("{args:?} was accepted"),
            }
        }
    }
}
