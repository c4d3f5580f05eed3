//! The Stripe catalogue of each plan: product ids and price lookup keys, and the prices in the
//! units Stripe takes (cents; metered prices per token as a decimal string of cents).

use crate::meter::Kind;
use domain::Plan;

pub const PLANS: [Plan; 2] = [Plan::Basic, Plan::Pro];

/// Our own product id (Stripe lets the caller choose it), so setup can find it again.
pub fn product_id(plan: Plan) -> String {
    format!("poindexter_{}", plan.as_str())
}

pub fn base_lookup_key(plan: Plan) -> String {
    format!("poindexter_{}_base", plan.as_str())
}

pub fn overage_lookup_key(plan: Plan, kind: Kind) -> String {
    format!("poindexter_{}_overage_{}", plan.as_str(), kind.as_str())
}

/// The plan a price belongs to, by its lookup key.
pub fn plan_of_lookup_key(key: &str) -> Option<Plan> {
    PLANS.into_iter().find(|p| {
        key == base_lookup_key(*p)
            || Kind::ALL
                .into_iter()
                .any(|k| key == overage_lookup_key(*p, k))
    })
}

/// Monthly base price in cents.
pub fn base_unit_amount_cents(plan: Plan) -> i64 {
    plan.monthly_price_microdollars() / 10_000
}

/// Per-token overage price in cents as a decimal string: microdollars per million tokens are
/// cents per token × 10^10.
pub fn overage_unit_amount_decimal(plan: Plan, kind: Kind) -> String {
    let per_mtok = match kind {
        Kind::Input => plan.overage_input_per_mtok_microdollars(),
        Kind::Output => plan.overage_output_per_mtok_microdollars(),
    };
    let whole = per_mtok / 10_000_000_000;
    let frac = format!("{:010}", per_mtok % 10_000_000_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_in_stripe_units() {
        assert_eq!(base_unit_amount_cents(Plan::Basic), 5_000);
        assert_eq!(base_unit_amount_cents(Plan::Pro), 25_000);
        // $3 per 1M tokens = 0.0003 cents per token.
        assert_eq!(
            overage_unit_amount_decimal(Plan::Basic, Kind::Input),
            "0.0003"
        );
        assert_eq!(
            overage_unit_amount_decimal(Plan::Basic, Kind::Output),
            "0.0015"
        );
        assert_eq!(
            overage_unit_amount_decimal(Plan::Pro, Kind::Input),
            "0.00025"
        );
        assert_eq!(
            overage_unit_amount_decimal(Plan::Pro, Kind::Output),
            "0.0012"
        );
        assert_eq!(
            plan_of_lookup_key("poindexter_pro_overage_output"),
            Some(Plan::Pro)
        );
        assert_eq!(plan_of_lookup_key("nope"), None);
    }
}
