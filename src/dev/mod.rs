//! `poindexter dev`: the whole stack on this machine, supervised, with development defaults.

mod cluster;
mod restate;
mod supervisor;

use anyhow::Context as _;
use config::{Component, Config};
use std::collections::HashMap;
use std::path::PathBuf;
use supervisor::{ChildSpec, Supervisor};

/// `poindexter dev [--restate-nodes N]`; bad arguments end with exit code 2.
pub fn main(args: &[String]) -> std::process::ExitCode {
    match restate_nodes_arg(args) {
        Ok(nodes) => crate::cli::run_async(run(nodes)),
        Err(e) => {
            eprintln!("poindexter dev: {e}\nusage: poindexter dev [--restate-nodes N]  (N = 1, or 3 to 7)");
            std::process::ExitCode::from(2)
        }
    }
}

/// How many Restate nodes: 1 (the default), or a cluster of 3 to 7 (replication 2 and a
/// metadata quorum need at least three to survive one node's loss).
fn restate_nodes_arg(args: &[String]) -> Result<usize, String> {
    let mut nodes = 1;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = match arg.strip_prefix("--restate-nodes") {
            Some("") => rest.next().map(String::as_str),
            Some(v) if v.starts_with('=') => Some(&v[1..]),
            _ => return Err(format!("unknown argument `{arg}`")),
        };
        nodes = match value.and_then(|v| v.parse::<usize>().ok()) {
            Some(n) if n == 1 || (3..=7).contains(&n) => n,
            _ => {
                return Err(format!(
                    "--restate-nodes needs 1 or a number from 3 to 7, got `{}`",
                    value.unwrap_or("")
                ))
            }
        };
    }
    Ok(nodes)
}

async fn run(restate_nodes: usize) -> anyhow::Result<()> {
    let mut env: HashMap<String, String> = std::env::vars().collect();
    let filled = config::apply_dev_defaults(&env);
    for d in &filled {
        env.insert(d.name.to_string(), d.value.clone());
    }
    if std::env::var_os("RUST_LOG").is_none() {
        env.insert(
            "RUST_LOG".into(),
            "info,sqlx=warn,hyper=warn,h2=warn".into(),
        );
    }
    let mut config = Config::load(Component::Api, &env).context("development configuration")?;
    server::telemetry::init("dev");

    let root = project_root()?;
    // POINDEXTER_DATA_DIR lets tests (and a second checkout) keep their own Restate data.
    let data = env
        .get("POINDEXTER_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".data"));
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;

    say("applying migrations");
    let pool = db::create_and_migrate(&config.database_url)
        .await
        .context("cannot prepare the database (is PostgreSQL running? `scripts/setup` installs and starts it)")?;
    pool.close().await;

    let restate_bin = restate::ensure_installed(&root).await?;
    let exe = std::env::current_exe().context("locating the poindexter binary")?;
    let nodes = if restate_nodes > 1 {
        let nodes = cluster::layout(
            restate_nodes,
            &config.restate_ingress_urls,
            &config.restate_admin_urls,
            env.get(cluster::NODE_PORTS_VAR).map(String::as_str),
        )?;
        // Every component gets every node, so each call can go to a live one.
        config.restate_ingress_urls = nodes.iter().map(cluster::Node::ingress_url).collect();
        config.restate_admin_urls = nodes.iter().map(cluster::Node::admin_url).collect();
        env.insert(
            "RESTATE_INGRESS_URL".into(),
            config.restate_ingress_urls.join(","),
        );
        env.insert(
            "RESTATE_ADMIN_URL".into(),
            config.restate_admin_urls.join(","),
        );
        Some(nodes)
    } else {
        None
    };
    let mut supervisor = Supervisor::new(env.clone(), data.join("logs"))?;
    match &nodes {
        Some(nodes) => {
            for spec in cluster::child_specs(&restate_bin, &root, &data, nodes) {
                supervisor.spawn(spec);
            }
        }
        None => supervisor.spawn(restate::child_spec(
            &restate_bin,
            &root,
            &data,
            url_port(&config.restate_ingress_urls[0], 8080),
            url_port(&config.restate_admin_urls[0], 9070),
        )),
    }
    for name in ["sandbox", "workflows", "api", "proxy"] {
        supervisor.spawn(ChildSpec::new(name, exe.clone(), vec![name.to_string()]));
    }

    let workflows_url = format!("http://{}", config.workflows_addr);
    let setup = async {
        if nodes.is_some() {
            say("waiting until every Restate partition has its replicas and a leader");
            let node_urls: Vec<String> = nodes
                .iter()
                .flatten()
                .map(cluster::Node::node_url)
                .collect();
            cluster::wait_settled(
                &root.join(restate::CTL_BIN),
                &node_urls,
                &config.restate_admin_urls,
                std::time::Duration::from_secs(120),
            )
            .await?;
        } else {
            restate::wait_healthy(&config.restate_admin_urls[0]).await?;
        }
        supervisor::wait_http(&format!("{workflows_url}/healthz")).await?;
        restate::register(&config.restate_admin_urls, &workflows_url).await?;
        restate::start_usage_scheduler(&config.restate_ingress_urls).await?;
        supervisor::wait_http(&format!("http://{}/healthz", config.api_addr)).await?;
        supervisor::wait_http(&format!("http://{}/healthz", config.proxy_addr)).await?;
        anyhow::Ok(())
    };
    tokio::select! {
        r = setup => {
            if let Err(e) = r {
                supervisor.stop_all().await;
                return Err(e);
            }
        }
        _ = server::shutdown::signal() => {
            supervisor.stop_all().await;
            return Ok(());
        }
    }

    print_banner(&config, &filled, nodes.as_deref());
    server::shutdown::signal().await;
    say("stopping every child");
    supervisor.stop_all().await;
    say("stopped");
    Ok(())
}

/// The directory holding the workspace `Cargo.toml` (dev runs from a checkout).
fn project_root() -> anyhow::Result<PathBuf> {
    let mut dir = std::env::current_dir()?;
    loop {
        if dir.join("tools").join("package.json").is_file() && dir.join("Cargo.toml").is_file() {
            return Ok(dir);
        }
        if !dir.pop() {
            anyhow::bail!("`poindexter dev` must run inside the project checkout");
        }
    }
}

fn url_port(url: &str, default: u16) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or(default)
}

#[allow(clippy::print_stdout)] // dev's banner is for the person at the terminal
fn say(line: &str) {
    println!("dev: {line}");
}

#[allow(clippy::print_stdout)]
fn print_banner(config: &Config, filled: &[config::DevDefault], nodes: Option<&[cluster::Node]>) {
    let names: Vec<&str> = filled.iter().map(|d| d.name).collect();
    println!();
    println!("  Poindexter Cloud is running");
    println!("  api         http://{}", config.api_addr);
    println!(
        "  portal      {}/signup  (connect Dex: poindexter connect)",
        config.public_base_url.trim_end_matches('/')
    );
    println!("  proxy       http://{}", config.proxy_addr);
    println!("  sandbox     http://{}", config.sandbox_addr);
    println!("  workflows   http://{}", config.workflows_addr);
    println!(
        "  restate     {} (ingress)",
        config.restate_ingress_urls.join(", ")
    );
    println!("  restate UI  {}/ui/", config.restate_admin_urls[0]);
    if let Some(nodes) = nodes {
        let addresses: Vec<String> = nodes.iter().map(cluster::Node::node_url).collect();
        println!(
            "  cluster     {} nodes: RESTATECTL_ADDRESS={} tools/node_modules/.bin/restatectl status",
            nodes.len(),
            addresses.join(",")
        );
    }
    println!("  admin token {}", config.secrets.admin_token.expose());
    if names.is_empty() {
        println!("  every setting came from the environment");
    } else {
        println!("  defaulted   {}", names.join(", "));
    }
    println!("  Ctrl-C stops everything.");
    println!();
}
