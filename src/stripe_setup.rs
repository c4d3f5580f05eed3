//! `poindexter stripe-setup`: creates (or finds) the Stripe meters, products and prices of
//! every plan in the account of STRIPE_SECRET_KEY at STRIPE_API_BASE, and prints their ids and
//! the environment lines to configure the api with. Safe to run again.

use std::process::ExitCode;

#[allow(clippy::print_stdout)] // the ids are this command's output
pub fn main() -> ExitCode {
    let config = match config::Config::from_env(config::Component::Migrate) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("poindexter stripe-setup: {e}");
            return ExitCode::from(2);
        }
    };
    if config.stripe.secret_key.is_empty() {
        eprintln!("poindexter stripe-setup: configuration error: STRIPE_SECRET_KEY is required but not set");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("poindexter stripe-setup: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let api = billing::StripeApi::new(
            config.stripe.secret_key.expose(),
            &config.stripe.api_base,
            billing::client::TIMEOUT,
        )?;
        billing::setup::run(&api).await
    });
    match result {
        Ok(report) => {
            for (name, id) in &report.meters {
                println!("meter   {name} = {id}");
            }
            for id in &report.products {
                println!("product {id}");
            }
            for (key, id) in &report.prices {
                println!("price   {key} = {id}");
            }
            println!(
                "created: {}",
                if report.created.is_empty() {
                    "nothing (all existed)".to_owned()
                } else {
                    report.created.join(", ")
                }
            );
            println!();
            for line in report.env_lines() {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("poindexter stripe-setup: {e}");
            ExitCode::FAILURE
        }
    }
}
