//! Billing Meter events for overage: their names, and identifiers derived from
//! (user, month, kind, cumulative overage) so the same report, re-sent after a crash or by a
//! re-run, carries the same identifier and Stripe (or the sandbox) counts it once.

use domain::Month;
use uuid::Uuid;

/// Which overage a meter measures; input and output are priced apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Input,
    Output,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Input, Kind::Output];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Output => "output",
        }
    }

    /// The meter's `event_name` (one meter per kind; each plan prices it with its own price).
    pub fn event_name(self) -> &'static str {
        match self {
            Self::Input => "poindexter_overage_input_tokens",
            Self::Output => "poindexter_overage_output_tokens",
        }
    }
}

/// The identifier of the meter event that brings the reported overage of `kind` up to
/// `cumulative` tokens.
pub fn identifier(user_id: Uuid, month: Month, kind: Kind, cumulative: i64) -> String {
    format!(
        "pdx-{}-{month}-{}-{cumulative}",
        user_id.simple(),
        kind.as_str()
    )
}

/// Stripe accepts meter-event timestamps up to 35 days old. A report for a month that has
/// ended is stamped at the month's last second while that is allowed, so it lands in that
/// period's invoice; otherwise (or during the month) it is stamped now.
pub fn event_timestamp(month: Month, now_unix: i64) -> i64 {
    let end = month
        .next()
        .first_day()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(now_unix);
    let last_second = end - 1;
    if now_unix > last_second && now_unix - last_second < 34 * 24 * 3600 {
        last_second
    } else {
        now_unix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_differ_by_every_part_and_repeat_for_the_same_report() {
        let u = Uuid::nil();
        let m = Month::parse("2026-11").unwrap();
        let a = identifier(u, m, Kind::Input, 1_000);
        assert_eq!(a, identifier(u, m, Kind::Input, 1_000));
        assert_ne!(a, identifier(u, m, Kind::Output, 1_000));
        assert_ne!(a, identifier(u, m, Kind::Input, 1_001));
        assert_ne!(a, identifier(u, m.next(), Kind::Input, 1_000));
        assert!(a.len() <= 100);
    }

    #[test]
    fn a_late_report_is_stamped_inside_its_month() {
        let m = Month::parse("2026-10").unwrap();
        let nov1 = 1_793_491_200; // 2026-11-01T00:00:00Z
        assert_eq!(event_timestamp(m, nov1 + 600), nov1 - 1);
        assert_eq!(event_timestamp(m.next(), nov1 + 600), nov1 + 600);
        assert_eq!(event_timestamp(m, nov1 + 40 * 86_400), nov1 + 40 * 86_400);
    }
}
