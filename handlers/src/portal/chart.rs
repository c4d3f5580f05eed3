//! The dashboard's usage chart: one stacked bar (input, output tokens) per day of the month,
//! drawn as SVG on the server. Only numbers and dates go into it, so it is safe to embed.

use chrono::{Datelike, NaiveDate};
use std::fmt::Write as _;

const W: f64 = 720.0;
const H: f64 = 180.0;
const BASE: f64 = 160.0;
const LEFT: f64 = 40.0;

/// `days` is every day of the period in order, with its (input, output) tokens; empty when
/// there is nothing to draw.
pub fn daily_bars(days: &[(NaiveDate, i64, i64)]) -> String {
    if days.iter().all(|(_, i, o)| i + o == 0) {
        return String::new();
    }
    let max = days.iter().map(|(_, i, o)| i + o).max().unwrap_or(0).max(1) as f64;
    let n = days.len().max(1) as f64;
    let slot = (W - LEFT) / n;
    let bar = (slot * 0.7).max(1.0);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {W} {H}" role="img" aria-label="Tokens per day this month" xmlns="http://www.w3.org/2000/svg">"#
    );
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" y1="{BASE}" x2="{W}" y2="{BASE}"/><text x="0" y="12">{}</text><text x="0" y="{BASE}">0</text>"#,
        super::format::tokens(max as i64)
    );
    for (k, (day, input, output)) in days.iter().enumerate() {
        let x = LEFT + k as f64 * slot + (slot - bar) / 2.0;
        let hi = (*input as f64 / max) * (BASE - 16.0);
        let ho = (*output as f64 / max) * (BASE - 16.0);
        if hi > 0.0 {
            let _ = write!(
                svg,
                r#"<rect class="bar-in" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{hi:.1}"><title>{day}: {input} input tokens</title></rect>"#,
                BASE - hi
            );
        }
        if ho > 0.0 {
            let _ = write!(
                svg,
                r#"<rect class="bar-out" x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{ho:.1}"><title>{day}: {output} output tokens</title></rect>"#,
                BASE - hi - ho
            );
        }
        if day.day() == 1 || day.day().is_multiple_of(5) {
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{:.1}">{}</text>"#,
                BASE + 14.0,
                day.day()
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_bar_pair_per_day_with_usage() {
        let d = |n| NaiveDate::from_ymd_opt(2026, 12, n).unwrap();
        let svg = daily_bars(&[(d(1), 100, 50), (d(2), 0, 0), (d(3), 10, 0)]);
        assert_eq!(svg.matches("class=\"bar-in\"").count(), 2);
        assert_eq!(svg.matches("class=\"bar-out\"").count(), 1);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(daily_bars(&[(d(1), 0, 0)]).is_empty());
    }
}
