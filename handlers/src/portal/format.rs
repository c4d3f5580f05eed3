//! Numbers, money and times as the portal shows them.

use chrono::{DateTime, Utc};

/// `1234567` → `1,234,567`.
pub fn int(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Token counts, short: `890`, `12.5K`, `2.4M`.
pub fn tokens(n: i64) -> String {
    let f = n as f64;
    if n.abs() >= 1_000_000 {
        format!("{}M", trim(f / 1e6))
    } else if n.abs() >= 10_000 {
        format!("{}K", trim(f / 1e3))
    } else {
        int(n)
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// Microdollars as dollars and cents, rounded half up: `$1,234.57`. Amounts under a cent
/// that are not zero show as `<$0.01` rather than a misleading `$0.00`.
pub fn money(micro: i64) -> String {
    if micro > 0 && micro < 10_000 {
        return "<$0.01".into();
    }
    let cents = (micro + 5_000).div_euclid(10_000);
    format!("${}.{:02}", int(cents / 100), cents % 100)
}

pub fn datetime(at: DateTime<Utc>) -> String {
    at.format("%b %-d, %H:%M UTC").to_string()
}

pub fn date(at: DateTime<Utc>) -> String {
    at.format("%b %-d, %Y").to_string()
}

/// `just now`, `5 min ago`, `3 h ago`, else the date.
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    match secs {
        s if s < 60 => "just now".into(),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        _ => datetime(at),
    }
}

/// A phone number as people read it: `+1 (555) 123-4567` for NANP numbers, else as stored.
pub fn phone(e164: &str) -> String {
    let d = e164
        .strip_prefix("+1")
        .filter(|d| d.len() == 10 && d.bytes().all(|b| b.is_ascii_digit()));
    match d {
        Some(d) => format!("+1 ({}) {}-{}", &d[..3], &d[3..6], &d[6..]),
        None => e164.to_owned(),
    }
}

/// A failure reason as a person reads it: without the engine's `Terminal error [500]: `.
pub fn reason(raw: &str) -> String {
    let r = raw.trim();
    let r = match r.strip_prefix("Terminal error [") {
        Some(rest) => rest.split_once("]: ").map(|(_, m)| m).unwrap_or(rest),
        None => r,
    };
    let mut c = r.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(int(-1000), "-1,000");
        assert_eq!(int(12), "12");
        assert_eq!(tokens(2_400_000), "2.4M");
        assert_eq!(tokens(5_000_000), "5M");
        assert_eq!(tokens(890_000), "890K");
        assert_eq!(tokens(1_234), "1,234");
        assert_eq!(money(50_000_000), "$50.00");
        assert_eq!(money(3_005_000), "$3.01");
        assert_eq!(money(1_234_567_890), "$1,234.57");
        assert_eq!(money(3), "<$0.01");
        assert_eq!(money(0), "$0.00");
        assert_eq!(phone("+15551234567"), "+1 (555) 123-4567");
        assert_eq!(phone("+447700900123"), "+447700900123");
        assert_eq!(
            reason("Terminal error [500]: google: HTTP 400: Bad Request"),
            "Google: HTTP 400: Bad Request"
        );
    }
}
