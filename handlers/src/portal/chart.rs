//! The dashboard's usage chart: one stacked bar (input, output tokens) per day of the month.
//! The bars are SVG, stretched to the card's width at a fixed height; the scale and the day
//! numbers are HTML text, so they stay readable on a phone instead of shrinking with the
//! drawing. Only numbers and dates go into it, so it is safe to embed.

use chrono::{Datelike, NaiveDate};
use std::fmt::Write as _;

/// A day's slot in the drawing's units; the bar takes 70% of it.
const SLOT: f64 = 10.0;
const BAR: f64 = 7.0;
/// The tallest day's bar; the drawing is stretched to the CSS height.
const TOP: f64 = 100.0;

/// `days` is every day of the period in order, with its (input, output) tokens; empty when
/// there is nothing to draw.
pub fn daily_bars(days: &[(NaiveDate, i64, i64)]) -> String {
    if days.iter().all(|(_, i, o)| i + o == 0) {
        return String::new();
    }
    let max = days.iter().map(|(_, i, o)| i + o).max().unwrap_or(0).max(1) as f64;
    let width = SLOT * days.len() as f64;
    let mut html = format!(
        r#"<div class="chart-plot" role="img" aria-label="Tokens per day this month"><div class="chart-scale" aria-hidden="true"><span>{}</span><span>0</span></div><div class="chart-area"><svg viewBox="0 0 {width} {TOP}" preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">"#,
        super::format::tokens(max as i64)
    );
    for (k, (day, input, output)) in days.iter().enumerate() {
        let x = k as f64 * SLOT + (SLOT - BAR) / 2.0;
        let hi = (*input as f64 / max) * TOP;
        let ho = (*output as f64 / max) * TOP;
        if hi > 0.0 {
            let _ = write!(
                html,
                r#"<rect class="bar-in" x="{x:.1}" y="{:.2}" width="{BAR}" height="{hi:.2}"><title>{day}: {input} input tokens</title></rect>"#,
                TOP - hi
            );
        }
        if ho > 0.0 {
            let _ = write!(
                html,
                r#"<rect class="bar-out" x="{x:.1}" y="{:.2}" width="{BAR}" height="{ho:.2}"><title>{day}: {output} output tokens</title></rect>"#,
                TOP - hi - ho
            );
        }
    }
    let _ = write!(
        html,
        r#"<line class="axis" x1="0" y1="{TOP}" x2="{width}" y2="{TOP}" vector-effect="non-scaling-stroke"/></svg><div class="chart-days days-{}" aria-hidden="true">"#,
        days.len()
    );
    // One cell per day, so the numbers sit under their bars; every fifth is labelled.
    for (day, _, _) in days {
        match day.day() {
            d if d == 1 || d.is_multiple_of(5) => {
                let _ = write!(html, "<span>{d}</span>");
            }
            _ => html.push_str("<span></span>"),
        }
    }
    html.push_str("</div></div></div>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_bar_pair_per_day_with_usage() {
        let d = |n| NaiveDate::from_ymd_opt(2026, 12, n).unwrap();
        let html = daily_bars(&[(d(1), 100, 50), (d(2), 0, 0), (d(3), 10, 0)]);
        assert_eq!(html.matches("class=\"bar-in\"").count(), 2);
        assert_eq!(html.matches("class=\"bar-out\"").count(), 1);
        assert!(html.contains("<span>150</span><span>0</span>"), "{html}");
        assert!(html.contains(r#"viewBox="0 0 30 100""#), "{html}");
        assert!(daily_bars(&[(d(1), 0, 0)]).is_empty());
    }

    #[test]
    fn labels_the_first_and_every_fifth_day_under_its_own_bar() {
        let days: Vec<_> = (1..=31)
            .map(|n| (NaiveDate::from_ymd_opt(2026, 12, n).unwrap(), 1, 1))
            .collect();
        let html = daily_bars(&days);
        let cells = html.split("chart-days days-31").nth(1).unwrap();
        assert_eq!(cells.matches("<span").count(), 31);
        let labels: Vec<&str> = cells
            .split("<span>")
            .filter_map(|c| c.split_once("</span>").map(|(l, _)| l))
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(labels, ["1", "5", "10", "15", "20", "25", "30"]);
    }
}
