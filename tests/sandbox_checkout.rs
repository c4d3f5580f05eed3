//! The sandbox's hosted Stripe Checkout page, as a person uses it: opening the checkout URL
//! shows the plan, its price and a labelled card form and pays nothing; submitting a test card
//! pays once and goes to the success URL; a declined or mistyped card pays nothing and says why.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sandbox::{start_receiver, start_sandbox, Received, TestSandbox};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

const CARD: [(&str, &str); 4] = [
    ("card_number", "4242 4242 4242 4242"),
    ("exp", "12 / 34"),
    ("cvc", "123"),
    ("name", "Grace Hopper"),
];

struct Checkout {
    sb: TestSandbox,
    webhooks: UnboundedReceiver<Received>,
    /// Follows no redirects, so a 303 is seen as such.
    browser: reqwest::Client,
    id: String,
    url: String,
}

/// A sandbox whose webhooks go to a receiver, a customer, and an open Checkout Session for
/// the basic plan (its base price and the two metered overage prices).
async fn open_checkout(success_url: &str) -> Checkout {
    let (receiver, webhooks) = start_receiver().await;
    let sb = start_sandbox(&[("SANDBOX_WEBHOOK_BASE", &receiver)]).await;
    let key = sb.config.stripe.secret_key.expose().to_owned();
    let stripe = |path: &str, form: &[(&str, &str)]| {
        sb.http
            .post(format!("{}/stripe/v1/{path}", sb.url))
            .bearer_auth(&key)
            .form(form)
    };
    let customer = common::json_of(stripe(
        "customers",
        &[("email", "grace@example.com"), ("name", "Grace <Hopper>")],
    ))
    .await;
    let session = common::json_of(stripe(
        "checkout/sessions",
        &[
            ("mode", "subscription"),
            ("customer", customer["id"].as_str().unwrap()),
            ("success_url", success_url),
            (
                "cancel_url",
                "http://127.0.0.1:9/dashboard?checkout=cancelled&a=<b>",
            ),
            ("line_items[0][price]", "price_basic_sandbox"),
            ("line_items[0][quantity]", "1"),
            ("line_items[1][price]", "price_basic_overage_input_sandbox"),
            ("line_items[2][price]", "price_basic_overage_output_sandbox"),
        ],
    ))
    .await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Checkout {
        id: session["id"].as_str().unwrap().to_owned(),
        url: session["url"].as_str().unwrap().to_owned(),
        sb,
        webhooks,
        browser,
    }
}

impl Checkout {
    async fn subscriptions(&self) -> Vec<Value> {
        self.sb.resources().await["stripe"]["subscriptions"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn pay(&self, fields: &[(&str, &str)]) -> reqwest::Response {
        self.browser
            .post(&self.url)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// The event types delivered so far (waiting a moment for stragglers).
    async fn delivered(&mut self) -> Vec<String> {
        let mut kinds = Vec::new();
        while let Ok(Some(r)) =
            tokio::time::timeout(Duration::from_millis(300), self.webhooks.recv()).await
        {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            kinds.push(v["type"].as_str().unwrap().to_owned());
        }
        kinds
    }
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn opening_the_page_shows_the_plan_and_a_labelled_card_form_and_pays_nothing() {
    let mut c = open_checkout("http://127.0.0.1:9/dashboard?session={CHECKOUT_SESSION_ID}").await;
    let page = c.browser.get(&c.url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(header(&page, "content-type").starts_with("text/html"));
    let csp = header(&page, "content-security-policy");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert_eq!(header(&page, "cache-control"), "no-store");
    let html = page.text().await.unwrap();
    for text in [
        "Subscribe to Poindexter Basic",
        "$50.00",
        "per<br>month",
        "Overage input tokens",
        "$3.00 per million",
        "Sandbox: test mode",
        r#"<label for="email">Email</label>"#,
        r#"<label for="card-number">Card number</label>"#,
        r#"<label for="exp">Expiration (MM / YY)</label>"#,
        r#"<label for="cvc">CVC</label>"#,
        r#"<label for="name">Cardholder name</label>"#,
        r#"value="grace@example.com""#,
        r#"<button type="submit">Pay and subscribe</button>"#,
        // The cancel URL, escaped.
        r#"href="http://127.0.0.1:9/dashboard?checkout=cancelled&amp;a=&lt;b&gt;">Cancel</a>"#,
    ] {
        assert!(html.contains(text), "page lacks {text}:\n{html}");
    }
    assert!(!html.contains("<script"), "the page needs no script");
    assert!(!html.contains("a=<b>"), "unescaped value in the page");
    assert!(c.subscriptions().await.is_empty(), "a GET paid");
    assert!(c.delivered().await.is_empty());

    let missing = c
        .browser
        .get(format!("{}/stripe/c/pay/cs_test_nope", c.sb.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing
        .text()
        .await
        .unwrap()
        .contains("This checkout page doesn"));
}

#[tokio::test]
async fn the_test_card_pays_once_and_goes_to_the_success_url() {
    let mut c = open_checkout("http://127.0.0.1:9/dashboard?session={CHECKOUT_SESSION_ID}").await;
    let paid = c.pay(&CARD).await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        header(&paid, "location"),
        format!("http://127.0.0.1:9/dashboard?session={}", c.id)
    );
    let subs = c.subscriptions().await;
    assert_eq!(subs.len(), 1, "{subs:?}");
    assert_eq!(subs[0]["status"], "active");
    assert_eq!(
        c.delivered().await,
        [
            "checkout.session.completed",
            "customer.subscription.created",
            "invoice.paid"
        ]
    );

    // Submitting again (a double click, the back button) only redirects.
    let again = c.pay(&CARD).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&again, "location"), header(&paid, "location"));
    assert_eq!(c.subscriptions().await.len(), 1);
    assert!(c.delivered().await.is_empty(), "paid twice");

    // Opened again, the page says it is done and links onwards.
    let page = c.browser.get(&c.url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("This checkout is complete"), "{html}");
    assert!(html.contains(&format!(
        r#"href="http://127.0.0.1:9/dashboard?session={}""#,
        c.id
    )));
    assert!(!html.contains("<form"));

    // The control route still pays without a browser, and agrees it is paid.
    let control =
        c.sb.http
            .post(format!(
                "{}/stripe/_sandbox/checkout/{}/pay",
                c.sb.url, c.id
            ))
            .send()
            .await
            .unwrap();
    assert_eq!(control.status(), StatusCode::OK);
    let v: Value = control.json().await.unwrap();
    assert_eq!(v["subscription"], subs[0]["id"]);
}

#[tokio::test]
async fn a_declined_card_pays_nothing_and_says_so() {
    let mut c = open_checkout("http://127.0.0.1:9/ok").await;
    let declined = c
        .pay(&[
            ("email", "grace@example.com"),
            ("card_number", "4000000000000002"),
            ("exp", "12/34"),
            ("cvc", "123"),
            ("name", "Grace Hopper"),
        ])
        .await;
    assert_eq!(declined.status(), StatusCode::PAYMENT_REQUIRED);
    let html = declined.text().await.unwrap();
    assert!(
        html.contains(r#"<div class="alert" role="alert">Your card was declined.</div>"#),
        "{html}"
    );
    // What was typed is kept, except the security code.
    assert!(html.contains(r#"value="4000000000000002""#));
    assert!(!html.contains(r#"value="123""#));
    assert!(c.subscriptions().await.is_empty());
    assert!(c.delivered().await.is_empty());

    // The same session is then paid with a good card.
    let paid = c.pay(&CARD).await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(&paid, "location"), "http://127.0.0.1:9/ok");
    assert_eq!(c.subscriptions().await.len(), 1);
}

#[tokio::test]
async fn mistyped_fields_are_named_and_nothing_is_paid() {
    let mut c = open_checkout("http://127.0.0.1:9/ok").await;
    // One field wrong at a time, the others as for the test card:
    // (field, what is typed, the input's id, the message shown under it).
    let cases = [
        (
            "card_number",
            "4242 4242 4242 4241",
            "card-number",
            "Your card number is invalid",
        ),
        (
            "card_number",
            "4242 4242",
            "card-number",
            "Your card number is incomplete",
        ),
        (
            "exp",
            "01/20",
            "exp",
            "Your card&#39;s expiration date is in the past.",
        ),
        ("exp", "1234", "exp", "Enter it as MM / YY."),
        (
            "cvc",
            "12",
            "cvc",
            "Your card&#39;s security code is incomplete",
        ),
    ];
    for (field, typed, id, message) in cases {
        let fields: Vec<(&str, &str)> = CARD
            .iter()
            .map(|&(k, v)| (k, if k == field { typed } else { v }))
            .collect();
        let r = c.pay(&fields).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{fields:?}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains(&format!(
                r#"aria-invalid="true" aria-describedby="{id}-error""#
            )),
            "{fields:?}: {html}"
        );
        assert!(
            html.contains(&format!(r#"<p class="error" id="{id}-error">"#)),
            "{fields:?}"
        );
        assert!(html.contains(message), "{fields:?} lacks {message}");
        // A typed value comes back escaped.
        assert!(!html.contains("<script>"));
    }
    let hostile = c
        .pay(&[("card_number", "\"><script>x</script>"), ("name", "")])
        .await;
    assert_eq!(hostile.status(), StatusCode::BAD_REQUEST);
    let html = hostile.text().await.unwrap();
    assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
    assert!(!html.contains("<script>"));
    assert!(html.contains("Enter the name on your card."));
    assert!(c.subscriptions().await.is_empty());
    assert!(c.delivered().await.is_empty());
}
