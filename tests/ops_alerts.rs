//! `ops/prometheus/alerts.yml` is valid Prometheus rules and its alerts fire when they should
//! and stay quiet when they should not: `promtool check rules` and `promtool test rules` on
//! `alerts_test.yml` (Debian's `prometheus` package; scripts/setup installs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

fn promtool(args: &[&str]) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/prometheus");
    let out = Command::new("promtool")
        .args(args)
        .current_dir(&dir)
        .output()
        .expect("promtool is installed (scripts/setup installs Debian's prometheus package)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn alert_rules_are_valid() {
    let out = promtool(&["check", "rules", "alerts.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn alerts_fire_above_their_thresholds_and_not_below() {
    let out = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

/// Each of the seed's alerts is there, with a unit test that expects it to fire.
#[test]
fn every_alert_is_unit_tested() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("ops/prometheus");
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("alerts_test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    for seed in [
        "ApiErrorRateHigh",
        "ApiLatencyP99High",
        "ProvisioningFailures",
        "PaymentFailures",
        "MeteringSpillGrowing",
        "UsageSyncLate",
    ] {
        assert!(alerts.contains(&seed), "alerts.yml lacks {seed}");
    }
    for alert in alerts {
        // A test that expects the alert to fire names it and then lists expected labels.
        let fires = tests.split("alertname: ").skip(1).any(|t| {
            t.starts_with(&format!("{alert}\n"))
                && t.lines().nth(1).is_some_and(|l| !l.contains("[]"))
        });
        assert!(
            fires,
            "no unit test in alerts_test.yml expects {alert} to fire"
        );
    }
}
