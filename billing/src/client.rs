//! The Stripe client (async-stripe): customers, Checkout Sessions, Billing Portal sessions,
//! subscriptions, prices, products, meters and meter events. Every POST carries an
//! `Idempotency-Key` chosen by the caller, so a retried call changes Stripe once. The base URL is configurable so the
//! same code talks to the sandbox.

use crate::meter::Kind;
use std::collections::HashMap;
use std::time::Duration;
use stripe::{IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_billing::billing_meter::{
    CreateBillingMeter, CreateBillingMeterDefaultAggregation,
    CreateBillingMeterDefaultAggregationFormula, ListBillingMeter,
};
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::subscription::{CancelSubscription, RetrieveSubscription};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAllowedPaymentMethodTypes,
    CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_core::customer::CreateCustomer;
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, CreatePriceRecurringUsageType,
    ListPrice,
};
use stripe_product::product::{CreateProduct, RetrieveProduct};

#[derive(Clone)]
pub struct StripeApi {
    client: stripe::Client,
}

/// A failed Stripe call, split the way callers must decide: retry or give up.
#[derive(Debug, thiserror::Error)]
pub enum StripeFailure {
    /// Stripe understood and refused (4xx other than 409/429): retrying will not help.
    #[error("Stripe refused the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// Network trouble, 409 (idempotent request in flight), 429 or 5xx: try again later.
    #[error("Stripe is unavailable: {0}")]
    Transient(String),
}

impl StripeFailure {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

impl From<StripeError> for StripeFailure {
    fn from(e: StripeError) -> Self {
        match e {
            StripeError::Stripe(err, status) if !matches!(status, 409 | 429 | 500..) => {
                Self::Rejected {
                    status,
                    message: err.message.clone().unwrap_or_else(|| "no message".into()),
                }
            }
            StripeError::Stripe(err, status) => Self::Transient(format!(
                "{status}: {}",
                err.message.clone().unwrap_or_default()
            )),
            // A response we cannot read is not something a retry fixes.
            StripeError::JSONDeserialize(m) => Self::Rejected {
                status: 200,
                message: format!("unreadable response: {m}"),
            },
            StripeError::ConfigError(m) => Self::Rejected {
                status: 0,
                message: m,
            },
            other => Self::Transient(other.to_string()),
        }
    }
}

fn idempotent(key: &str) -> Result<RequestStrategy, StripeFailure> {
    IdempotencyKey::new(key)
        .map(RequestStrategy::Idempotent)
        .map_err(|e| StripeFailure::Rejected {
            status: 0,
            message: e.to_string(),
        })
}

/// A Checkout Session ready to be opened by the customer.
#[derive(Debug, Clone)]
pub struct Checkout {
    pub id: String,
    pub url: String,
}

/// What `create_checkout_session` needs.
pub struct CheckoutRequest<'a> {
    pub customer: &'a str,
    /// The plan's flat monthly price.
    pub base_price: &'a str,
    /// The plan's metered overage prices (no quantity, billed from meter events).
    pub metered_prices: &'a [String],
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    pub user_id: &'a str,
    pub plan: domain::Plan,
    /// Unix time the billing periods are anchored to (the first of next month, UTC), so
    /// Stripe's invoices cover the calendar months our usage is counted in; the first, partial
    /// month is prorated by Stripe.
    pub billing_cycle_anchor: i64,
    pub idempotency_key: &'a str,
}

/// How long a Stripe request may take in the api (a person waits on their checkout or portal)
/// and in `stripe-setup`. Workflow steps pass their provider timeout instead.
pub const TIMEOUT: Duration = Duration::from_secs(20);

impl StripeApi {
    /// `api_base` like `https://api.stripe.com` or `http://127.0.0.1:4010/stripe`; a request
    /// that takes longer than `timeout` fails as transient (to be retried).
    pub fn new(secret_key: &str, api_base: &str, timeout: Duration) -> Result<Self, StripeFailure> {
        // async-stripe appends `v1/...` to the base, so it must end with a slash.
        let base = format!("{}/", api_base.trim_end_matches('/'));
        let client = stripe::ClientBuilder::new(secret_key)
            .url(base)
            .timeout(timeout)
            .build()
            .map_err(StripeFailure::from)?;
        Ok(Self { client })
    }

    pub async fn create_customer(
        &self,
        email: &str,
        user_id: &str,
        idempotency_key: &str,
    ) -> Result<String, StripeFailure> {
        let metadata = HashMap::from([("user_id".to_owned(), user_id.to_owned())]);
        let customer = CreateCustomer::new()
            .email(email)
            .metadata(metadata)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(customer.id.as_str().to_owned())
    }

    /// A subscription-mode Checkout Session paying by card or Link.
    pub async fn create_checkout_session(
        &self,
        req: CheckoutRequest<'_>,
    ) -> Result<Checkout, StripeFailure> {
        let mut items = vec![CreateCheckoutSessionLineItems {
            price: Some(req.base_price.to_owned()),
            quantity: Some(1),
            ..Default::default()
        }];
        items.extend(
            req.metered_prices
                .iter()
                .map(|p| CreateCheckoutSessionLineItems {
                    price: Some(p.clone()),
                    ..Default::default()
                }),
        );
        let metadata = HashMap::from([
            ("user_id".to_owned(), req.user_id.to_owned()),
            ("plan".to_owned(), req.plan.as_str().to_owned()),
        ]);
        let mut sub = CreateCheckoutSessionSubscriptionData::new();
        sub.metadata = Some(metadata.clone());
        sub.billing_cycle_anchor = Some(req.billing_cycle_anchor);
        let session = CreateCheckoutSession::new()
            .mode(stripe_checkout::CheckoutSessionMode::Subscription)
            .customer(req.customer)
            .client_reference_id(req.user_id)
            .line_items(items)
            // `allowed_payment_method_types` replaces `payment_method_types`, which Stripe
            // removed from Checkout Session creation in API version 2026-09-30.endive.
            .allowed_payment_method_types(vec![
                CreateCheckoutSessionAllowedPaymentMethodTypes::Card,
                CreateCheckoutSessionAllowedPaymentMethodTypes::Link,
            ])
            .subscription_data(sub)
            .metadata(metadata)
            .success_url(req.success_url)
            .cancel_url(req.cancel_url)
            .customize()
            .request_strategy(idempotent(req.idempotency_key)?)
            .send(&self.client)
            .await?;
        let url = session.url.ok_or_else(|| StripeFailure::Rejected {
            status: 200,
            message: "Checkout Session has no url".into(),
        })?;
        Ok(Checkout {
            id: session.id.as_str().to_owned(),
            url,
        })
    }

    /// A Billing Portal session URL for `customer`.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<String, StripeFailure> {
        let session = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(session.url)
    }

    /// Reports `value` tokens of `kind` overage for `customer`. The identifier is also the
    /// idempotency key: the same report is the same request.
    pub async fn report_meter_event(
        &self,
        kind: Kind,
        customer: &str,
        value: i64,
        identifier: &str,
        timestamp: i64,
    ) -> Result<(), StripeFailure> {
        let payload = HashMap::from([
            ("stripe_customer_id".to_owned(), customer.to_owned()),
            ("value".to_owned(), value.to_string()),
        ]);
        CreateBillingMeterEvent::new(kind.event_name(), payload)
            .identifier(identifier)
            .timestamp(timestamp)
            .customize()
            .request_strategy(idempotent(identifier)?)
            .send(&self.client)
            .await?;
        Ok(())
    }

    /// The subscription's current state at Stripe.
    pub async fn subscription(&self, id: &str) -> Result<SubscriptionInfo, StripeFailure> {
        let sub = RetrieveSubscription::new(id).send(&self.client).await?;
        let first = sub.items.data.first();
        Ok(SubscriptionInfo {
            id: sub.id.as_str().to_owned(),
            customer: sub.customer.id().as_str().to_owned(),
            status: sub.status.as_str().to_owned(),
            prices: sub
                .items
                .data
                .iter()
                .map(|i| (i.price.id.as_str().to_owned(), i.price.lookup_key.clone()))
                .collect(),
            // Newer API versions keep the period on the items.
            current_period: first.map(|i| (i.current_period_start, i.current_period_end)),
            cancel_at_period_end: sub.cancel_at_period_end,
            metadata: sub.metadata,
        })
    }

    /// Cancels the subscription now (Stripe then sends `customer.subscription.deleted`). A
    /// DELETE, which Stripe treats as idempotent by itself: no Idempotency-Key.
    pub async fn cancel_subscription(&self, id: &str) -> Result<String, StripeFailure> {
        let sub = CancelSubscription::new(id).send(&self.client).await?;
        Ok(sub.status.as_str().to_owned())
    }

    /// Cancels the subscription for good, as closing an account does: a final invoice at once
    /// for the metered usage not invoiced yet (`invoice_now`, else Stripe drops it), and no
    /// credit for the rest of the paid month (`prorate: false`). Already canceled: done.
    pub async fn close_subscription(&self, id: &str) -> Result<(), StripeFailure> {
        if self.subscription(id).await?.status == "canceled" {
            return Ok(());
        }
        CancelSubscription::new(id)
            .invoice_now(true)
            .prorate(false)
            .send(&self.client)
            .await?;
        Ok(())
    }

    /// Active prices with these lookup keys, as (lookup_key, price id).
    pub async fn prices_by_lookup_keys(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, String)>, StripeFailure> {
        let list = ListPrice::new()
            .lookup_keys(keys.to_vec())
            .active(true)
            .limit(100)
            .send(&self.client)
            .await?;
        Ok(list
            .data
            .into_iter()
            .filter_map(|p| Some((p.lookup_key?, p.id.as_str().to_owned())))
            .collect())
    }

    /// The product's id if it exists.
    pub async fn find_product(&self, id: &str) -> Result<Option<String>, StripeFailure> {
        match RetrieveProduct::new(id).send(&self.client).await {
            Ok(p) => Ok(Some(p.id.as_str().to_owned())),
            Err(StripeError::Stripe(_, 404)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn create_product(
        &self,
        id: &str,
        name: &str,
        idempotency_key: &str,
    ) -> Result<String, StripeFailure> {
        let p = CreateProduct::new(name)
            .id(id)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(p.id.as_str().to_owned())
    }

    /// A monthly price; metered (billed from `meter`) when a meter is given.
    pub async fn create_price(
        &self,
        spec: &PriceSpec,
        idempotency_key: &str,
    ) -> Result<String, StripeFailure> {
        let mut recurring = CreatePriceRecurring::new(CreatePriceRecurringInterval::Month);
        let mut req = CreatePrice::new(stripe_types::Currency::USD)
            .product(spec.product.as_str())
            .lookup_key(spec.lookup_key.as_str())
            .nickname(spec.nickname.as_str());
        match &spec.amount {
            PriceAmount::Cents(c) => req = req.unit_amount(*c),
            PriceAmount::DecimalCents(d) => req = req.unit_amount_decimal(d.as_str()),
        }
        if let Some(meter) = &spec.meter {
            recurring.usage_type = Some(CreatePriceRecurringUsageType::Metered);
            recurring.meter = Some(meter.clone());
        }
        let price = req
            .recurring(recurring)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(price.id.as_str().to_owned())
    }

    /// Active meters as (event_name, meter id).
    pub async fn meters(&self) -> Result<Vec<(String, String)>, StripeFailure> {
        let list = ListBillingMeter::new()
            .limit(100)
            .send(&self.client)
            .await?;
        Ok(list
            .data
            .into_iter()
            .map(|m| (m.event_name, m.id.as_str().to_owned()))
            .collect())
    }

    /// A meter summing `value` per customer for `event_name`.
    pub async fn create_meter(
        &self,
        event_name: &str,
        display_name: &str,
        idempotency_key: &str,
    ) -> Result<String, StripeFailure> {
        let m = CreateBillingMeter::new(
            CreateBillingMeterDefaultAggregation {
                formula: CreateBillingMeterDefaultAggregationFormula::Sum,
            },
            display_name,
            event_name,
        )
        .customize()
        .request_strategy(idempotent(idempotency_key)?)
        .send(&self.client)
        .await?;
        Ok(m.id.as_str().to_owned())
    }
}

/// What we read from a Stripe subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionInfo {
    pub id: String,
    pub customer: String,
    /// Stripe's status: active, past_due, canceled, …
    pub status: String,
    /// (price id, lookup key) of every item.
    pub prices: Vec<(String, Option<String>)>,
    /// (start, end) of the current period, Unix seconds.
    pub current_period: Option<(i64, i64)>,
    pub cancel_at_period_end: bool,
    pub metadata: HashMap<String, String>,
}

pub enum PriceAmount {
    Cents(i64),
    DecimalCents(String),
}

pub struct PriceSpec {
    pub product: String,
    pub lookup_key: String,
    pub nickname: String,
    pub amount: PriceAmount,
    pub meter: Option<String>,
}
