//! Overage above a plan's included tokens (SPEC): the included tokens are the first tokens of
//! the period in serving order, input before output within a request; every later token is
//! overage, priced by its kind. Pure integer arithmetic, money in microdollars.

use domain::Plan;

/// Tokens of one served request, in serving order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// Totals and overage of one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UsageTotals {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub overage: Overage,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Overage {
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// Folds requests (in serving order) against `included` tokens.
#[derive(Debug, Clone, Copy)]
pub struct Accumulator {
    included: i64,
    totals: UsageTotals,
}

impl Accumulator {
    pub fn new(included: i64) -> Self {
        Self {
            included: included.max(0),
            totals: UsageTotals::default(),
        }
    }

    pub fn add(&mut self, r: Served) {
        let used = self.totals.input_tokens + self.totals.output_tokens;
        let left = (self.included - used).max(0);
        let over_in = (r.input_tokens - left).max(0);
        let left_after_in = (left - r.input_tokens).max(0);
        let over_out = (r.output_tokens - left_after_in).max(0);
        self.totals.input_tokens += r.input_tokens;
        self.totals.output_tokens += r.output_tokens;
        self.totals.overage.input_tokens += over_in;
        self.totals.overage.output_tokens += over_out;
    }

    pub fn finish(self) -> UsageTotals {
        self.totals
    }
}

/// Overage of `requests` on `plan`.
pub fn compute(plan: Plan, requests: impl IntoIterator<Item = Served>) -> UsageTotals {
    compute_with_allowance(Some(plan.included_tokens()), requests)
}

/// Totals and overage against `included` tokens; `None` means nothing counts as overage.
pub fn compute_with_allowance(
    included: Option<i64>,
    requests: impl IntoIterator<Item = Served>,
) -> UsageTotals {
    let mut acc = Accumulator::new(included.unwrap_or(i64::MAX));
    for r in requests {
        acc.add(r);
    }
    acc.finish()
}

/// Price of `tokens` at `per_mtok` microdollars per million, rounded down to the microdollar.
pub fn price(tokens: i64, per_mtok: i64) -> i64 {
    let p = i128::from(tokens.max(0)) * i128::from(per_mtok) / 1_000_000;
    i64::try_from(p).unwrap_or(i64::MAX)
}

impl Overage {
    /// What this overage costs on `plan`.
    pub fn cost_microdollars(&self, plan: Plan) -> i64 {
        price(
            self.input_tokens,
            plan.overage_input_per_mtok_microdollars(),
        ) + price(
            self.output_tokens,
            plan.overage_output_per_mtok_microdollars(),
        )
    }
}

/// The plan whose allowance and prices apply to a month. While the month runs it is the plan
/// in force now (an upgrade raises the allowance at once, a downgrade lowers it); once the
/// month is over, the plan recorded for it stays, whatever the user changes later.
pub fn plan_for_month(
    recorded: Option<Plan>,
    current: Option<Plan>,
    month_is_over: bool,
) -> Option<Plan> {
    if month_is_over {
        recorded.or(current)
    } else {
        current.or(recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(i: i64, o: i64) -> Served {
        Served {
            input_tokens: i,
            output_tokens: o,
        }
    }

    #[test]
    fn spec_example_basic_6m_input_then_half_m_output() {
        let t = compute(Plan::Basic, [req(6_000_000, 0), req(0, 500_000)]);
        assert_eq!(t.overage.input_tokens, 1_000_000);
        assert_eq!(t.overage.output_tokens, 500_000);
        // $3.00 + $7.50
        assert_eq!(t.overage.cost_microdollars(Plan::Basic), 10_500_000);
    }

    #[test]
    fn within_one_request_input_is_counted_before_output() {
        // 4.9M used, then a request of 200k in + 300k out: 100k in and 300k out are over.
        let t = compute(Plan::Basic, [req(4_900_000, 0), req(200_000, 300_000)]);
        assert_eq!(
            t.overage,
            Overage {
                input_tokens: 100_000,
                output_tokens: 300_000
            }
        );
        // Output crossing the line inside one request.
        let t = compute(Plan::Basic, [req(4_000_000, 0), req(500_000, 700_000)]);
        assert_eq!(
            t.overage,
            Overage {
                input_tokens: 0,
                output_tokens: 200_000
            }
        );
    }

    #[test]
    fn order_decides_the_kind_of_overage() {
        let a = compute(Plan::Basic, [req(5_000_000, 0), req(0, 1_000_000)]);
        let b = compute(Plan::Basic, [req(0, 1_000_000), req(5_000_000, 0)]);
        assert_eq!(a.overage.output_tokens, 1_000_000);
        assert_eq!(b.overage.input_tokens, 1_000_000);
        assert!(
            a.overage.cost_microdollars(Plan::Basic) > b.overage.cost_microdollars(Plan::Basic)
        );
    }

    #[test]
    fn nothing_is_overage_within_the_allowance_and_pro_prices_apply() {
        let t = compute(Plan::Pro, [req(20_000_000, 10_000_000)]);
        assert_eq!(t.overage, Overage::default());
        let t = compute(Plan::Pro, [req(31_000_000, 1_000_000)]);
        assert_eq!(t.overage.input_tokens, 1_000_000);
        assert_eq!(
            t.overage.cost_microdollars(Plan::Pro),
            2_500_000 + 12_000_000
        );
    }

    #[test]
    fn price_rounds_down_to_the_microdollar() {
        assert_eq!(price(1, 3_000_000), 3);
        assert_eq!(price(1, 2_500_000), 2);
        assert_eq!(price(3, 2_500_000), 7);
    }
}
