//! Argument parsing and the start-up of one component. Configuration errors end the process
//! with one line naming the variable and exit code 2.

use config::{Component, Config};
use std::process::ExitCode;

const USAGE: &str = "usage: poindexter <command>

commands:
  dev         run the whole stack on this machine (Postgres, Restate, sandbox, workflows, api, proxy);
              `--restate-nodes 3` runs Restate as a three-node cluster
  api         run the api
  proxy       run the streaming AI proxy
  workflows   run the Restate workflows endpoint
  sandbox     run the provider sandbox
  migrate     create the database if missing and apply migrations
  stripe-setup  create the Stripe meters, products and prices (idempotent) and print their ids
  connect     connect a Dex instance as Dex does (OAuth with PKCE in the browser), then use the token;
              `poindexter connect --help` for its options";

pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first().map(String::as_str) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let component = match command {
        "api" => Component::Api,
        "proxy" => Component::Proxy,
        "workflows" => Component::Workflows,
        "sandbox" => Component::Sandbox,
        "migrate" => Component::Migrate,
        "dev" => return crate::dev::main(&args[1..]),
        "stripe-setup" => return crate::stripe_setup::main(),
        "connect" => return crate::connect::main(&args[1..]),
        "-h" | "--help" | "help" => {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("poindexter: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env(component) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("poindexter {command}: {e}");
            return ExitCode::from(2);
        }
    };
    server::telemetry::init(component_name(component));
    run_async(start(component, config))
}

fn component_name(c: Component) -> &'static str {
    match c {
        Component::Api => "api",
        Component::Proxy => "proxy",
        Component::Workflows => "workflows",
        Component::Sandbox => "sandbox",
        Component::Migrate => "migrate",
    }
}

pub(crate) fn run_async(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("poindexter: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "exiting");
            eprintln!("poindexter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for the {what}: {e}"))?;
    tracing::info!(%addr, "{what} listening");
    Ok(listener)
}

async fn start(component: Component, config: Config) -> anyhow::Result<()> {
    server::metrics::handle();
    match component {
        Component::Migrate => {
            db::create_and_migrate(&config.database_url).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Component::Api => {
            let app = handlers::build(config.clone()).await?;
            let listener = bind(config.api_addr, "api").await?;
            server::serve(listener, app.router.clone(), server::shutdown::signal()).await?;
            app.shutdown().await;
            Ok(())
        }
        Component::Proxy => {
            let app = proxy::build(&config).await?;
            let addr = config.proxy_addr;
            app.serve(addr, server::shutdown::signal())
                .await
                .map_err(|e| anyhow::anyhow!("cannot serve the proxy on {addr}: {e}"))?;
            app.shutdown().await;
            Ok(())
        }
        Component::Sandbox => {
            let app = sandbox::build(&config);
            let listener = bind(config.sandbox_addr, "sandbox").await?;
            server::serve(listener, app, server::shutdown::signal()).await?;
            Ok(())
        }
        Component::Workflows => {
            let (endpoint, ops) = workflows::build(&config)?;
            let listener = bind(config.workflows_addr, "workflows endpoint").await?;
            workflows::serve(listener, endpoint, ops, server::shutdown::signal()).await;
            Ok(())
        }
    }
}
