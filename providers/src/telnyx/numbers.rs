//! Phone numbers: search available numbers, order one (idempotently, by customer reference),
//! follow the order, point the number at a messaging profile, release it.

use super::{TelnyxClient, TelnyxError};
use crate::http::Repeat;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

/// `GET /v2/available_phone_numbers` filters.
#[derive(Debug, Clone)]
pub struct NumberSearch {
    pub country_code: String,
    /// e.g. `["sms"]`.
    pub features: Vec<String>,
    pub limit: u32,
    pub locality: Option<String>,
}

impl Default for NumberSearch {
    fn default() -> Self {
        Self {
            country_code: "US".into(),
            features: vec!["sms".into()],
            limit: 5,
            locality: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AvailableNumber {
    pub phone_number: String,
    #[serde(default)]
    pub features: Vec<Feature>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Feature {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct NumberOrder {
    pub id: String,
    /// `pending`, `success`, `failure` or `cancelled`.
    pub status: String,
    #[serde(default)]
    pub phone_numbers: Vec<OrderPhoneNumber>,
    #[serde(default)]
    pub customer_reference: Option<String>,
    #[serde(default)]
    pub messaging_profile_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderPhoneNumber {
    pub id: String,
    pub phone_number: String,
    #[serde(default)]
    pub status: String,
}

/// A number on the account (`/v2/phone_numbers`); `id` is what release and settings take.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PhoneNumber {
    pub id: String,
    pub phone_number: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub messaging_profile_id: Option<String>,
    #[serde(default)]
    pub customer_reference: Option<String>,
}

/// The outcome of [`TelnyxClient::ensure_number`].
#[derive(Debug, Clone)]
pub struct OrderedNumber {
    pub number: PhoneNumber,
    /// False when an earlier attempt had already ordered it.
    pub created: bool,
}

/// An order that has not completed yet: retryable, the number will appear under its reference.
fn order_pending(order: &NumberOrder) -> TelnyxError {
    TelnyxError::Api {
        status: 503,
        code: "order_pending".into(),
        message: format!("number order {} is still {}", order.id, order.status),
    }
}

impl TelnyxClient {
    pub async fn search_available_numbers(
        &self,
        search: &NumberSearch,
    ) -> Result<Vec<AvailableNumber>, TelnyxError> {
        let mut query: Vec<(&str, String)> = vec![
            ("filter[country_code]", search.country_code.clone()),
            ("filter[limit]", search.limit.to_string()),
        ];
        for f in &search.features {
            query.push(("filter[features][]", f.clone()));
        }
        if let Some(l) = &search.locality {
            query.push(("filter[locality]", l.clone()));
        }
        self.call(
            Method::GET,
            &["v2", "available_phone_numbers"],
            &query,
            None,
            Repeat::Safe,
        )
        .await
    }

    /// Orders numbers. Not repeated after a timeout (the order may exist); use
    /// [`TelnyxClient::ensure_number`] for an idempotent purchase.
    pub async fn create_number_order(
        &self,
        phone_numbers: &[&str],
        messaging_profile_id: Option<&str>,
        customer_reference: Option<&str>,
    ) -> Result<NumberOrder, TelnyxError> {
        let mut body = json!({
            "phone_numbers": phone_numbers.iter().map(|n| json!({"phone_number": n})).collect::<Vec<_>>(),
        });
        if let Some(p) = messaging_profile_id {
            body["messaging_profile_id"] = json!(p);
        }
        if let Some(r) = customer_reference {
            body["customer_reference"] = json!(r);
        }
        self.call(
            Method::POST,
            &["v2", "number_orders"],
            &[],
            Some(&body),
            Repeat::OnlyIfNotDelivered,
        )
        .await
    }

    pub async fn get_number_order(&self, order_id: &str) -> Result<NumberOrder, TelnyxError> {
        self.call(
            Method::GET,
            &["v2", "number_orders", order_id],
            &[],
            None,
            Repeat::Safe,
        )
        .await
    }

    /// Number orders placed with `customer_reference` = `reference`.
    pub async fn orders_by_reference(
        &self,
        reference: &str,
    ) -> Result<Vec<NumberOrder>, TelnyxError> {
        self.call(
            Method::GET,
            &["v2", "number_orders"],
            &[("filter[customer_reference]", reference.to_owned())],
            None,
            Repeat::Safe,
        )
        .await
    }

    /// Numbers on the account whose `customer_reference` is `reference`.
    pub async fn numbers_by_reference(
        &self,
        reference: &str,
    ) -> Result<Vec<PhoneNumber>, TelnyxError> {
        self.call(
            Method::GET,
            &["v2", "phone_numbers"],
            &[("filter[customer_reference]", reference.to_owned())],
            None,
            Repeat::Safe,
        )
        .await
    }

    /// The account's number with this E.164 value, if it owns it.
    pub async fn find_number(&self, e164: &str) -> Result<Option<PhoneNumber>, TelnyxError> {
        let found: Vec<PhoneNumber> = self
            .call(
                Method::GET,
                &["v2", "phone_numbers"],
                &[("filter[phone_number]", e164.to_owned())],
                None,
                Repeat::Safe,
            )
            .await?;
        Ok(found.into_iter().find(|n| n.phone_number == e164))
    }

    pub async fn get_number(&self, number_id: &str) -> Result<PhoneNumber, TelnyxError> {
        self.call(
            Method::GET,
            &["v2", "phone_numbers", number_id],
            &[],
            None,
            Repeat::Safe,
        )
        .await
    }

    /// Buys one SMS-capable number tagged with `reference` (e.g. the identity id), or returns
    /// the number an earlier attempt bought under that reference. A candidate taken by someone
    /// else between search and order is skipped for the next one; an ambiguous failure of the
    /// order is settled by looking the reference up again, so a repeat never buys twice.
    pub async fn ensure_number(
        &self,
        reference: &str,
        search: &NumberSearch,
        messaging_profile_id: Option<&str>,
    ) -> Result<OrderedNumber, TelnyxError> {
        let mut last_error = None;
        for round in 0..=self.inner.opts.max_retries {
            if let Some(e) = &last_error {
                tracing::warn!(error = %e, "telnyx number purchase not settled; retrying");
                // Give an order whose answer was lost time to show up before looking again.
                let pause = self.inner.opts.min_backoff * (1 << round.min(6));
                tokio::time::sleep(pause.min(self.inner.opts.max_backoff)).await;
            }
            if let Some(number) = self
                .numbers_by_reference(reference)
                .await?
                .into_iter()
                .next()
            {
                return Ok(OrderedNumber {
                    number,
                    created: false,
                });
            }
            let pending = self
                .orders_by_reference(reference)
                .await?
                .into_iter()
                .find(|o| o.status == "pending");
            if let Some(order) = pending {
                last_error = Some(order_pending(&order));
                continue;
            }
            let candidates = self.search_available_numbers(search).await?;
            if candidates.is_empty() {
                return Err(TelnyxError::NoNumberAvailable(
                    "the search found no numbers".into(),
                ));
            }
            match self
                .order_first_available(&candidates, messaging_profile_id, reference)
                .await
            {
                Ok(number) => {
                    return Ok(OrderedNumber {
                        number,
                        created: true,
                    })
                }
                // Every candidate was taken: a fresh search offers others.
                Err(e) if e.is_retryable() || matches!(e, TelnyxError::NoNumberAvailable(_)) => {
                    last_error = Some(e)
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| TelnyxError::NoNumberAvailable("no attempt left".into())))
    }

    async fn order_first_available(
        &self,
        candidates: &[AvailableNumber],
        messaging_profile_id: Option<&str>,
        reference: &str,
    ) -> Result<PhoneNumber, TelnyxError> {
        let mut unavailable = 0;
        for candidate in candidates {
            let order = match self
                .create_number_order(
                    &[&candidate.phone_number],
                    messaging_profile_id,
                    Some(reference),
                )
                .await
            {
                Ok(o) => o,
                Err(TelnyxError::NumberUnavailable(_)) => {
                    unavailable += 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match order.status.as_str() {
                "success" => {}
                "failure" | "cancelled" => {
                    unavailable += 1;
                    continue;
                }
                // Pending: a retryable failure; the next round finds the number by reference.
                _ => return Err(order_pending(&order)),
            }
            return self
                .find_number(&candidate.phone_number)
                .await?
                .ok_or_else(|| {
                    TelnyxError::Decode("an ordered number is missing from the account".into())
                });
        }
        Err(TelnyxError::NoNumberAvailable(format!(
            "{unavailable} candidate(s) were no longer available"
        )))
    }

    /// Assigns the number to a messaging profile (whose webhook URL receives its inbound SMS).
    pub async fn set_messaging_profile(
        &self,
        number_id: &str,
        messaging_profile_id: &str,
    ) -> Result<(), TelnyxError> {
        let _: serde_json::Value = self
            .call(
                Method::PATCH,
                &["v2", "phone_numbers", number_id, "messaging"],
                &[],
                Some(&json!({ "messaging_profile_id": messaging_profile_id })),
                Repeat::Safe,
            )
            .await?;
        Ok(())
    }

    /// Releases the number. `TelnyxError::NotFound` when the account does not own it (a
    /// compensation can count that as done).
    pub async fn release_number(&self, number_id: &str) -> Result<(), TelnyxError> {
        let _: serde_json::Value = self
            .call(
                Method::DELETE,
                &["v2", "phone_numbers", number_id],
                &[],
                None,
                Repeat::Safe,
            )
            .await?;
        Ok(())
    }
}
