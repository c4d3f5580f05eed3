use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn api_env() -> HashMap<String, String> {
    env(&[
        ("ENCRYPTION_KEY", &"ab".repeat(32)),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("ADMIN_TOKEN", "admin-token-0123456789"),
    ])
}

#[test]
fn api_needs_its_secrets_and_names_the_missing_one() {
    let mut e = api_env();
    e.remove("JWT_SECRET");
    let err = Config::load(Component::Api, &e).err();
    assert_eq!(err, Some(ConfigError::Missing("JWT_SECRET")));
    assert!(Config::load(Component::Api, &api_env()).is_ok());
}

#[test]
fn malformed_values_name_the_variable() {
    let mut e = api_env();
    e.insert("ENCRYPTION_KEY".into(), "not-hex".into());
    assert_eq!(
        Config::load(Component::Api, &e).err().map(|e| e.variable()),
        Some("ENCRYPTION_KEY")
    );
    let mut e = api_env();
    e.insert("API_ADDR".into(), "nowhere".into());
    let err = Config::load(Component::Api, &e).err();
    assert_eq!(err.as_ref().map(|e| e.variable()), Some("API_ADDR"));
    assert!(err
        .map(|e| e.to_string())
        .unwrap_or_default()
        .contains("API_ADDR"));
}

#[test]
fn proxy_starts_without_api_secrets() {
    assert!(Config::load(Component::Proxy, &env(&[])).is_ok());
}

#[test]
fn dev_defaults_fill_only_unset_values_and_close_the_telnyx_loop() {
    let explicit = env(&[("ADMIN_TOKEN", "mine-mine-mine-mine")]);
    let filled = apply_dev_defaults(&explicit);
    assert!(filled.iter().all(|d| d.name != "ADMIN_TOKEN"));
    let mut merged = explicit.clone();
    for d in &filled {
        merged.insert(d.name.to_string(), d.value.clone());
    }
    let cfg = Config::load(Component::Api, &merged);
    let cfg = cfg.ok();
    assert_eq!(
        cfg.as_ref().map(|c| c.secrets.admin_token.expose()),
        Some("mine-mine-mine-mine")
    );
    let cfg = cfg.map(|c| (c.telnyx.public_key, c.sandbox.telnyx_signing_key));
    let Some((Some(public), Some(seed))) = cfg else {
        panic!("telnyx keys should be filled");
    };
    let derived = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    assert_eq!(public, derived);
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let cfg = Config::load(Component::Api, &api_env()).ok();
    let text = format!("{cfg:?}");
    assert!(!text.contains("admin-token-0123456789"));
}

#[test]
fn dev_defaults_give_google_a_service_account_key_file_aimed_at_the_sandbox() {
    let filled = apply_dev_defaults(&env(&[("SANDBOX_ADDR", "127.0.0.1:4999")]));
    let json = filled
        .iter()
        .find(|d| d.name == "GOOGLE_SERVICE_ACCOUNT_JSON")
        .map(|d| d.value.clone())
        .unwrap_or_default();
    assert!(json.contains("\"type\":\"service_account\""));
    assert!(json.contains(DEV_GOOGLE_SERVICE_ACCOUNT_EMAIL));
    assert!(json.contains("-----BEGIN PRIVATE KEY-----\\n"));
    assert!(json.contains("\"token_uri\":\"http://127.0.0.1:4999/google/token\""));
    let explicit = env(&[("GOOGLE_SERVICE_ACCOUNT_JSON", "{\"mine\":true}")]);
    assert!(apply_dev_defaults(&explicit)
        .iter()
        .all(|d| d.name != "GOOGLE_SERVICE_ACCOUNT_JSON"));
}

#[test]
fn workflows_refuse_to_start_without_provider_credentials() {
    let err = Config::load(Component::Workflows, &api_env()).err();
    assert_eq!(
        err.map(|e| e.variable()),
        Some("GOOGLE_SERVICE_ACCOUNT_JSON")
    );
}

#[test]
fn restate_urls_accept_one_node_or_a_comma_separated_cluster() {
    let cfg = Config::load(Component::Api, &api_env()).unwrap();
    assert_eq!(cfg.restate_ingress_urls, vec!["http://127.0.0.1:8080"]);
    let mut e = api_env();
    e.insert(
        "RESTATE_INGRESS_URL".into(),
        "http://a:8080/, http://b:8080 ,https://c:8080".into(),
    );
    e.insert(
        "RESTATE_ADMIN_URL".into(),
        "http://a:9070,http://b:9070".into(),
    );
    let cfg = Config::load(Component::Api, &e).unwrap();
    assert_eq!(
        cfg.restate_ingress_urls,
        vec!["http://a:8080", "http://b:8080", "https://c:8080"]
    );
    assert_eq!(
        cfg.restate_admin_urls,
        vec!["http://a:9070", "http://b:9070"]
    );
}

#[test]
fn a_bad_entry_in_a_restate_url_list_names_the_variable() {
    for bad in [
        "http://a:8080,,http://b:8080",
        "http://a:8080,b:8080",
        "http://a:8080,",
    ] {
        let mut e = api_env();
        e.insert("RESTATE_INGRESS_URL".into(), bad.into());
        let err = Config::load(Component::Api, &e).err();
        assert_eq!(
            err.map(|e| e.variable()),
            Some("RESTATE_INGRESS_URL"),
            "{bad}"
        );
    }
}
