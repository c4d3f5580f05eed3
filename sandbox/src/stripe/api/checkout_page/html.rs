//! The checkout page's HTML: self-contained (inline CSS, no script, nothing fetched), readable
//! from a phone's 390 px up, every field labelled, every value escaped.

use super::card::{Entered, Field};
use super::{money, Checkout, Problem};
use std::fmt::Write;

/// The card form, filled with `entered` and annotated with `problem`.
pub(super) fn form(c: &Checkout, entered: &Entered, problem: &Problem) -> String {
    let error_of = |f: Field| {
        problem
            .fields
            .iter()
            .find(|e| e.field == f)
            .map(|e| e.message)
    };
    let first_bad = problem.fields.first().map(|e| e.field);
    let input = |f: Field, spec: &InputSpec<'_>, value: &str| {
        let mut h = String::new();
        let error = error_of(f);
        let _ = write!(
            h,
            r#"<div class="field{invalid}"><label for="{id}">{label}</label><input id="{id}" name="{name}" type="{kind}" autocomplete="{auto}"{mode} placeholder="{ph}" maxlength="{max}" value="{value}"{required}"#,
            invalid = if error.is_some() { " invalid" } else { "" },
            id = spec.id,
            label = spec.label,
            name = spec.name,
            kind = spec.kind,
            auto = spec.autocomplete,
            mode = if spec.numeric {
                r#" inputmode="numeric""#
            } else {
                ""
            },
            ph = spec.placeholder,
            max = spec.max,
            value = esc(value),
            required = if spec.required { " required" } else { "" },
        );
        if error.is_some() {
            let _ = write!(
                h,
                r#" aria-invalid="true" aria-describedby="{id}-error""#,
                id = spec.id
            );
        }
        if first_bad == Some(f) {
            h.push_str(" autofocus");
        }
        h.push('>');
        if let Some(msg) = error {
            let _ = write!(
                h,
                r#"<p class="error" id="{id}-error">{msg}</p>"#,
                id = spec.id,
                msg = esc(msg)
            );
        }
        h.push_str("</div>");
        h
    };

    let alert = problem
        .alert
        .as_deref()
        .map(|m| format!(r#"<div class="alert" role="alert">{}</div>"#, esc(m)))
        .unwrap_or_default();
    let price = money(c.total, &c.currency);
    let cancel = c
        .cancel_url
        .as_deref()
        .map(|u| format!(r#"<a class="cancel" href="{}">Cancel</a>"#, esc(u)))
        .unwrap_or_default();

    let mut body = String::new();
    body.push_str(&summary(c));
    let _ = write!(
        body,
        r#"<section class="pay" aria-labelledby="pay-title">
<h2 id="pay-title">Pay with card</h2>
{alert}
<form method="post" novalidate>
{email}
{number}
<div class="row">{exp}{cvc}</div>
{name}
<button type="submit">Pay and subscribe</button>
<p class="fine">You will be charged {price} every {interval} until you cancel. Usage beyond your plan is billed at the end of each period.</p>
{cancel}
</form>
<div class="testcards">
<p><strong>Test mode.</strong> Nothing is charged. Pay with <code>4242 4242 4242 4242</code>, any future date and any CVC; <code>4000 0000 0000 0002</code> is declined.</p>
</div>
</section>"#,
        email = input(Field::Email, &EMAIL, &entered.email),
        number = input(Field::Number, &NUMBER, &entered.number),
        exp = input(Field::Exp, &EXP, &entered.exp),
        cvc = input(Field::Cvc, &CVC, &entered.cvc),
        name = input(Field::Name, &NAME, &entered.name),
        interval = esc(&c.interval),
    );
    document(&format!("Subscribe to {}", c.title), &body)
}

/// A paid session, opened again.
pub(super) fn complete(c: &Checkout) -> String {
    let next = c
        .success_url
        .as_deref()
        .map(|u| format!(r#"<p><a class="button" href="{}">Continue</a></p>"#, esc(u)))
        .unwrap_or_default();
    let body = format!(
        r#"{summary}<section class="pay done" aria-labelledby="done-title">
<div class="tick" aria-hidden="true">✓</div>
<h2 id="done-title">This checkout is complete</h2>
<p>Your subscription to {title} is active. Nothing more is needed here.</p>
{next}
</section>"#,
        summary = summary(c),
        title = esc(&c.title),
    );
    document("This checkout is complete", &body)
}

pub(super) fn not_found() -> String {
    let body = r#"<section class="pay done single" aria-labelledby="missing-title">
<span class="badge">Sandbox: test mode</span>
<h1 id="missing-title">This checkout page doesn't exist</h1>
<p>The link may be incomplete, or the sandbox was reset since the checkout was started. Go back to the site you came from and subscribe again.</p>
</section>"#;
    document("Checkout not found", body)
}

/// What is being bought: the plan, its price, and the usage-based items.
fn summary(c: &Checkout) -> String {
    let mut lines = String::new();
    for l in &c.lines {
        let _ = write!(
            lines,
            r#"<li><div><span class="line-name">{name}</span><span class="line-detail">{detail}</span></div><span class="line-amount">{amount}</span></li>"#,
            name = esc(&l.name),
            detail = esc(&l.detail),
            amount = l.amount.as_deref().map(esc).unwrap_or_default(),
        );
    }
    format!(
        r#"<section class="summary" aria-labelledby="summary-title">
<div class="brand"><span class="logo" aria-hidden="true">{initial}</span><span class="merchant">{title}</span><span class="badge">Sandbox: test mode</span></div>
<h1 id="summary-title"><span class="eyebrow">Subscribe to {title}</span><span class="price"><span class="amount">{total}</span><span class="per">per<br>{interval}</span></span></h1>
<ul class="lines">{lines}</ul>
<div class="total"><span>{due}</span><span>{total}</span></div>
<p class="session">Checkout session <code>{id}</code></p>
</section>"#,
        initial = esc(&c
            .title
            .chars()
            .next()
            .unwrap_or('S')
            .to_uppercase()
            .to_string()),
        title = esc(&c.title),
        total = esc(&money(c.total, &c.currency)),
        interval = esc(&c.interval),
        id = esc(&c.id),
        due = if c.complete {
            "Paid today"
        } else {
            "Total due today"
        },
    )
}

fn document(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{CSS}</style>
</head>
<body>
<main class="checkout">
{body}
</main>
<footer>Sandbox Stripe · test mode, no real payment is made</footer>
</body>
</html>
"#,
        title = esc(title),
    )
}

struct InputSpec<'a> {
    id: &'a str,
    name: &'a str,
    label: &'a str,
    kind: &'a str,
    autocomplete: &'a str,
    placeholder: &'a str,
    max: u32,
    numeric: bool,
    required: bool,
}

const EMAIL: InputSpec<'static> = InputSpec {
    id: "email",
    name: "email",
    label: "Email",
    kind: "email",
    autocomplete: "email",
    placeholder: "you@example.com",
    max: 254,
    numeric: false,
    required: false,
};
const NUMBER: InputSpec<'static> = InputSpec {
    id: "card-number",
    name: "card_number",
    label: "Card number",
    kind: "text",
    autocomplete: "cc-number",
    placeholder: "1234 1234 1234 1234",
    max: 23,
    numeric: true,
    required: true,
};
const EXP: InputSpec<'static> = InputSpec {
    id: "exp",
    name: "exp",
    label: "Expiration (MM / YY)",
    kind: "text",
    autocomplete: "cc-exp",
    placeholder: "MM / YY",
    max: 9,
    numeric: true,
    required: true,
};
const CVC: InputSpec<'static> = InputSpec {
    id: "cvc",
    name: "cvc",
    label: "CVC",
    kind: "text",
    autocomplete: "cc-csc",
    placeholder: "123",
    max: 4,
    numeric: true,
    required: true,
};
const NAME: InputSpec<'static> = InputSpec {
    id: "name",
    name: "name",
    label: "Cardholder name",
    kind: "text",
    autocomplete: "cc-name",
    placeholder: "Full name on card",
    max: 100,
    numeric: false,
    required: true,
};

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
*,*::before,*::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;min-height:100vh;display:flex;flex-direction:column;background:#f6f8fb;color:#1a1f36;font:16px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main.checkout{flex:1;width:100%;max-width:980px;margin:0 auto;padding:48px 24px;display:grid;grid-template-columns:1fr 1fr;gap:64px;align-items:start}
footer{text-align:center;color:#697386;font-size:13px;padding:16px 24px 28px}
code{font:13px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#eef1f6;border-radius:4px;padding:1px 5px;word-break:break-all}
.brand{display:flex;align-items:center;gap:10px;flex-wrap:wrap;margin-bottom:28px}
.logo{width:32px;height:32px;border-radius:8px;background:#4f46e5;color:#fff;display:inline-flex;align-items:center;justify-content:center;font-weight:700}
.merchant{font-weight:600}
.badge{display:inline-block;font-size:12px;font-weight:600;letter-spacing:.02em;color:#9a4b00;background:#ffeccf;border:1px solid #f7c98a;border-radius:999px;padding:2px 10px}
h1{margin:0 0 28px;font-weight:inherit;font-size:inherit}
.eyebrow{display:block;color:#697386;font-weight:500;margin-bottom:4px}
.price{display:flex;align-items:center;gap:10px}
.amount{font-size:40px;font-weight:700;letter-spacing:-.02em;line-height:1.1}
.per{font-size:14px;line-height:1.2;color:#697386}
.lines{list-style:none;margin:0;padding:0;border-top:1px solid #e3e8ee}
.lines li{display:flex;justify-content:space-between;gap:16px;padding:14px 0;border-bottom:1px solid #e3e8ee}
.line-name{display:block;font-weight:500}
.line-detail{display:block;font-size:14px;color:#697386}
.line-amount{font-weight:500;white-space:nowrap}
.total{display:flex;justify-content:space-between;font-weight:600;padding:16px 0}
.session{margin:24px 0 0;font-size:13px;color:#697386}
.pay{background:#fff;border-radius:12px;padding:32px;box-shadow:0 1px 3px rgba(26,31,54,.08),0 8px 24px rgba(26,31,54,.08)}
.pay h2,.pay h1{margin:0 0 20px;font-size:20px;font-weight:600}
.field{margin-bottom:16px}
.row{display:grid;grid-template-columns:1fr 1fr;gap:12px}
label{display:block;font-size:14px;font-weight:500;color:#3c4257;margin-bottom:6px}
input{width:100%;font:inherit;color:inherit;padding:10px 12px;border:1px solid #cfd7df;border-radius:6px;background:#fff;box-shadow:0 1px 1px rgba(0,0,0,.03)}
input::placeholder{color:#a3acb9}
input:focus{outline:none;border-color:#4f46e5;box-shadow:0 0 0 3px rgba(79,70,229,.25)}
.invalid input{border-color:#df1b41}
.invalid input:focus{box-shadow:0 0 0 3px rgba(223,27,65,.2)}
.error{margin:6px 0 0;font-size:14px;color:#df1b41}
.alert{margin:0 0 20px;padding:12px 14px;border-radius:6px;background:#fff0f2;border:1px solid #f8b4c1;color:#a4112e;font-weight:500}
button,.button{display:block;width:100%;margin-top:8px;padding:12px 16px;font:inherit;font-weight:600;color:#fff;background:#4f46e5;border:0;border-radius:6px;cursor:pointer;text-align:center;text-decoration:none;box-shadow:0 1px 2px rgba(0,0,0,.12)}
button:hover,.button:hover{background:#4338ca}
button:focus-visible,.button:focus-visible,.cancel:focus-visible{outline:3px solid rgba(79,70,229,.45);outline-offset:2px}
.fine{margin:14px 0 0;font-size:13px;color:#697386;text-align:center}
.cancel{display:block;margin-top:12px;text-align:center;color:#4f46e5;font-weight:500;text-decoration:none;padding:6px}
.cancel:hover{text-decoration:underline}
.testcards{margin-top:24px;padding:12px 14px;border-radius:6px;background:#f6f8fb;border:1px dashed #cfd7df;font-size:13px;color:#3c4257}
.testcards p{margin:0}
.testcards code{white-space:nowrap;word-break:normal}
.done{text-align:center}
.done h2,.done h1{margin-top:12px}
.tick{width:48px;height:48px;margin:0 auto;border-radius:50%;background:#e3f9e5;color:#1b873f;font-size:26px;line-height:48px;font-weight:700}
.single{grid-column:1 / -1;max-width:480px;margin:0 auto}
@media (max-width:820px){
main.checkout{grid-template-columns:1fr;gap:24px;padding:24px 16px}
.brand{margin-bottom:16px}
h1{margin-bottom:16px}
.amount{font-size:32px}
.pay{padding:24px 18px}
.done{order:-1}
}
"#;
