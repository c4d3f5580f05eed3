//! The pages of the connect flow: plan choice, live provisioning, consent.

use crate::portal::connect_state::StepView;
use crate::portal::page::Chrome;
use askama::Template;

pub struct PlanCard {
    pub id: &'static str,
    pub name: &'static str,
    pub price: String,
    pub tokens: String,
    pub overage_in: String,
    pub overage_out: String,
    pub support: &'static str,
    pub featured: bool,
}

/// Basic and Pro, with their prices from the plan definitions.
pub fn plan_cards() -> Vec<PlanCard> {
    use domain::Plan;
    let money = crate::portal::format::money;
    [
        (Plan::Basic, "Email support", false),
        (Plan::Pro, "Priority support", true),
    ]
    .into_iter()
    .map(|(plan, support, featured)| PlanCard {
        id: plan.as_str(),
        name: match plan {
            Plan::Basic => "Basic",
            Plan::Pro => "Pro",
        },
        price: money(plan.monthly_price_microdollars()),
        tokens: crate::portal::format::tokens(plan.included_tokens()),
        overage_in: money(plan.overage_input_per_mtok_microdollars()),
        overage_out: money(plan.overage_output_per_mtok_microdollars()),
        support,
        featured,
    })
    .collect()
}

#[derive(Template)]
#[template(path = "plans.html")]
pub struct PlansPage {
    pub chrome: Chrome,
    pub plans: Vec<PlanCard>,
    pub connecting: Option<String>,
    pub next: String,
    pub notice: Option<String>,
    /// The authorization request's fields, for "Cancel and return to Dex".
    pub cancel: Option<Vec<(String, String)>>,
}

#[derive(Template)]
#[template(path = "progress.html")]
pub struct ProgressPage {
    pub chrome: Chrome,
    pub phase: &'static str,
    pub steps: Vec<StepView>,
    pub failure: Option<String>,
    pub next: String,
    pub cancel: Option<Vec<(String, String)>>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    pub chrome: Chrome,
    pub client: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub redirect_host: String,
    pub hidden: Vec<(String, String)>,
}
