//! `poindexter connect`: what a Dex instance does to connect to Poindexter Cloud, runnable from
//! a terminal. OAuth 2.0 authorization code with PKCE through the user's browser and a loopback
//! redirect (RFC 8252), then the identity, one AI request, a refresh and, on request, a
//! revocation. Progress goes to stdout one flushed line at a time, and never a token; a failure
//! is one line on stderr naming its step, and exit code 1.

mod answer;
mod args;
mod authorize;
mod callback;
mod chat;
#[cfg(test)]
mod fake_server;
mod flow;
mod identity;
mod loopback;
mod pkce;
mod tokens;

use std::io::Write;
use std::process::ExitCode;

/// `args` are those after `connect`.
pub fn main(args: &[String]) -> ExitCode {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let opts = match args::parse(args, env) {
        Ok(args::Parsed::Run(opts)) => opts,
        Ok(args::Parsed::Help) => {
            eprintln!("{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("poindexter connect: {e}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("poindexter connect: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(flow::run(&opts, &print_line)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("poindexter connect: {} failed: {:#}", f.step, f.error);
            ExitCode::FAILURE
        }
    }
}

/// Flushed line by line: whoever drives the browser reads the URL while this command waits.
fn print_line(line: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout leaves nobody to tell; the exit code still says how it went.
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}
