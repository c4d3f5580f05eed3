//! `poindexter stripe-setup` (the real binary) against an empty sandbox Stripe account: creates
//! the meters, products and prices of both plans, prints their ids and the variables to set,
//! and a second run finds everything and creates nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod billing_support;
mod common;

use billing_support::{STRIPE_KEY, WEBHOOK_SECRET};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

async fn setup(env: &HashMap<String, String>) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_poindexter"))
        .arg("stripe-setup")
        .env_clear()
        .envs(env)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kind name = id` lines of the output.
fn ids(stdout: &str, kind: &str) -> BTreeMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(kind))
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn stripe_setup_creates_the_catalogue_once_and_prints_the_ids() {
    // A sandbox without STRIPE_PRICE_*: an empty Stripe account.
    let sandbox_env: HashMap<String, String> = [
        ("STRIPE_SECRET_KEY", STRIPE_KEY),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let refs: Vec<(&str, &str)> = sandbox_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let sb = common::sandbox::start_sandbox_with(&refs, |c| {
        c.stripe.price_basic.clear();
        c.stripe.price_pro.clear();
    })
    .await;
    let sandbox = sb.url.clone();

    let mut env = sandbox_env.clone();
    env.insert("STRIPE_API_BASE".into(), format!("{sandbox}/stripe"));
    let (code, first, err) = setup(&env).await;
    assert_eq!(code, 0, "stdout: {first}\nstderr: {err}");
    let prices = ids(&first, "price");
    let meters = ids(&first, "meter");
    assert_eq!(prices.len(), 6, "{first}");
    assert_eq!(meters.len(), 2, "{first}");
    assert!(first.contains("product poindexter_basic") && first.contains("product poindexter_pro"));
    assert!(
        first.contains("price poindexter_pro_overage_output"),
        "{first}"
    );
    let basic = &prices["poindexter_basic_base"];
    assert!(
        first.contains(&format!("STRIPE_PRICE_BASIC={basic}")),
        "{first}"
    );
    assert!(first.contains(&format!(
        "STRIPE_PRICE_PRO={}",
        prices["poindexter_pro_base"]
    )));

    // What exists in the account is what a user of it needs: the metered overage prices bill
    // from the meters at the plan's price per token.
    let client = reqwest::Client::new();
    let list: Value = client
        .get(format!(
            "{sandbox}/stripe/v1/prices?lookup_keys[0]=poindexter_basic_overage_input&lookup_keys[1]=poindexter_pro_overage_output"
        ))
        .bearer_auth(STRIPE_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{list}");
    for p in data {
        assert_eq!(p["recurring"]["usage_type"], "metered");
        let want = if p["lookup_key"] == "poindexter_basic_overage_input" {
            ("0.0003", &meters["poindexter_overage_input_tokens"])
        } else {
            ("0.0012", &meters["poindexter_overage_output_tokens"])
        };
        assert_eq!(p["unit_amount_decimal"], want.0, "{p}");
        assert_eq!(p["recurring"]["meter"], want.1.as_str(), "{p}");
    }

    // Again: nothing new, the same ids.
    let (code, second, err) = setup(&env).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        second.contains("created: nothing (all existed)"),
        "{second}"
    );
    assert_eq!(ids(&second, "price"), prices);
    assert_eq!(ids(&second, "meter"), meters);

    // Without a key it stops with one line naming the variable.
    env.remove("STRIPE_SECRET_KEY");
    let (code, _, err) = setup(&env).await;
    assert_eq!(code, 2);
    assert!(err.contains("STRIPE_SECRET_KEY"), "{err}");
}
