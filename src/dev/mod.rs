//! `poindexter dev`: the whole stack on this machine, supervised, with development defaults.

mod restate;
mod supervisor;

use anyhow::Context as _;
use config::{Component, Config};
use std::collections::HashMap;
use std::path::PathBuf;
use supervisor::{ChildSpec, Supervisor};

pub async fn run() -> anyhow::Result<()> {
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
    let config = Config::load(Component::Api, &env).context("development configuration")?;
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
    let mut supervisor = Supervisor::new(env.clone(), data.join("logs"))?;
    let ingress = url_port(&config.restate_ingress_url, 8080);
    let admin = url_port(&config.restate_admin_url, 9070);
    supervisor.spawn(restate::child_spec(
        &restate_bin,
        &root,
        &data,
        ingress,
        admin,
    ));
    for name in ["sandbox", "workflows", "api", "proxy"] {
        supervisor.spawn(ChildSpec::new(name, exe.clone(), vec![name.to_string()]));
    }

    let workflows_url = format!("http://{}", config.workflows_addr);
    let setup = async {
        restate::wait_healthy(&config.restate_admin_url).await?;
        supervisor::wait_http(&format!("{workflows_url}/healthz")).await?;
        restate::register(&config.restate_admin_url, &workflows_url).await?;
        restate::start_usage_scheduler(&config.restate_ingress_url).await?;
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

    print_banner(&config, &filled);
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
fn print_banner(config: &Config, filled: &[config::DevDefault]) {
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
    println!("  restate     {} (ingress)", config.restate_ingress_url);
    println!("  restate UI  {}/ui/", config.restate_admin_url);
    println!("  admin token {}", config.secrets.admin_token.expose());
    if names.is_empty() {
        println!("  every setting came from the environment");
    } else {
        println!("  defaulted   {}", names.join(", "));
    }
    println!("  Ctrl-C stops everything.");
    println!();
}
