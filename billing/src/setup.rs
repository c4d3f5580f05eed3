//! `poindexter stripe-setup`: creates the meters, products and prices of every plan in a
//! Stripe account. Idempotent: what exists (found by product id, meter event name or price
//! lookup key) is reused, and every creation carries a deterministic Idempotency-Key.

use crate::catalog::{self, PLANS};
use crate::client::{PriceAmount, PriceSpec, StripeApi, StripeFailure};
use crate::meter::Kind;
use std::collections::BTreeMap;

/// Every id created or found, by name.
#[derive(Debug, Default, serde::Serialize)]
pub struct SetupReport {
    /// event_name → meter id
    pub meters: BTreeMap<String, String>,
    pub products: Vec<String>,
    /// lookup_key → price id
    pub prices: BTreeMap<String, String>,
    /// Names of the objects this run created (the rest already existed).
    pub created: Vec<String>,
}

impl SetupReport {
    /// The environment lines to configure the api with.
    pub fn env_lines(&self) -> Vec<String> {
        PLANS
            .into_iter()
            .filter_map(|p| {
                let id = self.prices.get(&catalog::base_lookup_key(p))?;
                Some(format!(
                    "STRIPE_PRICE_{}={id}",
                    p.as_str().to_ascii_uppercase()
                ))
            })
            .collect()
    }
}

pub async fn run(api: &StripeApi) -> Result<SetupReport, StripeFailure> {
    let mut report = SetupReport::default();
    let existing = api.meters().await?;
    for kind in Kind::ALL {
        let name = kind.event_name();
        let id = match existing.iter().find(|(n, _)| n == name) {
            Some((_, id)) => id.clone(),
            None => {
                report.created.push(format!("meter {name}"));
                let display = format!("Overage {} tokens", kind.as_str());
                api.create_meter(name, &display, &format!("pdx-setup-meter-{name}"))
                    .await?
            }
        };
        report.meters.insert(name.to_owned(), id);
    }

    let mut keys = Vec::new();
    for plan in PLANS {
        keys.push(catalog::base_lookup_key(plan));
        keys.extend(Kind::ALL.map(|k| catalog::overage_lookup_key(plan, k)));
    }
    let found: BTreeMap<String, String> = api
        .prices_by_lookup_keys(&keys)
        .await?
        .into_iter()
        .collect();

    for plan in PLANS {
        let product = catalog::product_id(plan);
        if api.find_product(&product).await?.is_none() {
            report.created.push(format!("product {product}"));
            let name = format!("Poindexter {}", capitalised(plan.as_str()));
            api.create_product(&product, &name, &format!("pdx-setup-{product}"))
                .await?;
        }
        report.products.push(product.clone());

        let mut specs = vec![PriceSpec {
            product: product.clone(),
            lookup_key: catalog::base_lookup_key(plan),
            nickname: format!("{} monthly", plan.as_str()),
            amount: PriceAmount::Cents(catalog::base_unit_amount_cents(plan)),
            meter: None,
        }];
        for kind in Kind::ALL {
            specs.push(PriceSpec {
                product: product.clone(),
                lookup_key: catalog::overage_lookup_key(plan, kind),
                nickname: format!("{} overage {} tokens", plan.as_str(), kind.as_str()),
                amount: PriceAmount::DecimalCents(catalog::overage_unit_amount_decimal(plan, kind)),
                meter: report.meters.get(kind.event_name()).cloned(),
            });
        }
        for spec in specs {
            let id = match found.get(&spec.lookup_key) {
                Some(id) => id.clone(),
                None => {
                    report.created.push(format!("price {}", spec.lookup_key));
                    api.create_price(&spec, &format!("pdx-setup-{}", spec.lookup_key))
                        .await?
                }
            };
            report.prices.insert(spec.lookup_key, id);
        }
    }
    Ok(report)
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}
