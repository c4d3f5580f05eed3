//! What a person typed into the hosted checkout's card form, checked the way Stripe's test mode
//! checks it: each wrong field gets its own message, and a well-formed card gets test mode's
//! answer.
//!
//! What pays and what is declined (a small part of Stripe's test-card table):
//! - `4000 0000 0000 0002` is declined: "Your card was declined." (`generic_decline`);
//!   `4000 0000 0000 9995` for insufficient funds, `4000 0000 0000 0069` as expired and
//!   `4000 0000 0000 0127` for a wrong CVC, with Stripe's messages for them.
//! - Every other 16-digit number that passes the Luhn check pays, `4242 4242 4242 4242` first
//!   among them, as Stripe's test mode accepts its many brand test cards (Mastercard's
//!   `5555 5555 5555 4444`, …).
//! - 15-digit (American Express) and 19-digit numbers are refused as invalid: the sandbox only
//!   takes 16 digits. Spaces and dashes between digits are ignored.
//!
//! The expiry is `MM / YY` (or `MM/YY`, or a four-digit year); a card is good through the last
//! day of its month. The CVC is 3 or 4 digits. The name on the card is required; the email may
//! be empty (the customer already has one) but must look like an address when given.

/// The form's fields as typed.
#[derive(Debug, Default, Clone)]
pub struct Entered {
    pub email: String,
    pub number: String,
    pub exp: String,
    pub cvc: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    Number,
    Exp,
    Cvc,
    Name,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: Field,
    pub message: &'static str,
}

/// Test mode's answer for a well-formed card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    /// Stripe's reason (its `decline_code`, or the error `code` for an expired card and a
    /// wrong CVC) and the message its hosted page shows.
    Declined {
        reason: &'static str,
        message: &'static str,
    },
}

/// Declining test numbers: (number, reason, message).
const DECLINES: [(&str, &str, &str); 4] = [
    (
        "4000000000000002",
        "generic_decline",
        "Your card was declined.",
    ),
    (
        "4000000000009995",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    ("4000000000000069", "expired_card", "Your card has expired."),
    (
        "4000000000000127",
        "incorrect_cvc",
        "Your card's security code is incorrect.",
    ),
];

/// Checks every field (all wrong ones are reported at once); `today` is (year, month).
pub fn check(e: &Entered, today: (i32, u32)) -> Result<Outcome, Vec<FieldError>> {
    let results = [
        (Field::Email, email(&e.email)),
        (Field::Number, number(&e.number).map(|_| ())),
        (Field::Exp, expiry(&e.exp, today)),
        (Field::Cvc, cvc(&e.cvc)),
        (Field::Name, name(&e.name)),
    ];
    let errors: Vec<FieldError> = results
        .into_iter()
        .filter_map(|(field, r)| r.err().map(|message| FieldError { field, message }))
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    let digits = number(&e.number).map_err(|_| Vec::new())?;
    Ok(DECLINES
        .iter()
        .find(|(n, _, _)| *n == digits)
        .map_or(Outcome::Approved, |(_, reason, message)| {
            Outcome::Declined { reason, message }
        }))
}

fn email(v: &str) -> Result<(), &'static str> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(());
    }
    let well_formed = v.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains('@')
    }) && !v.contains(char::is_whitespace);
    if well_formed {
        Ok(())
    } else {
        Err("Your email address is invalid. Enter it as name@example.com.")
    }
}

/// The card number's digits.
fn number(v: &str) -> Result<String, &'static str> {
    let digits: String = v.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if digits.is_empty() {
        return Err("Enter your card number.");
    }
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("Your card number is invalid: use digits only.");
    }
    if digits.len() < 16 {
        return Err("Your card number is incomplete: it has 16 digits.");
    }
    if digits.len() > 16 || !luhn(&digits) {
        return Err("Your card number is invalid. Check it against your card.");
    }
    Ok(digits)
}

fn luhn(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if !i.is_multiple_of(2) {
                let twice = d * 2;
                if twice > 9 {
                    twice - 9
                } else {
                    twice
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn expiry(v: &str, (year, month): (i32, u32)) -> Result<(), &'static str> {
    const FORMAT: &str = "Your card's expiration date is incomplete. Enter it as MM / YY.";
    let Some((m, y)) = v.trim().split_once('/') else {
        return Err(if v.trim().is_empty() {
            "Enter your card's expiration date as MM / YY."
        } else {
            FORMAT
        });
    };
    let (m, y) = (m.trim(), y.trim());
    let all_digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if !all_digits(m) || m.len() > 2 || !all_digits(y) || !(y.len() == 2 || y.len() == 4) {
        return Err(FORMAT);
    }
    let exp_month: u32 = m.parse().map_err(|_| FORMAT)?;
    let mut exp_year: i32 = y.parse().map_err(|_| FORMAT)?;
    if !(1..=12).contains(&exp_month) {
        return Err("Your card's expiration month is invalid: use 01 to 12.");
    }
    if y.len() == 2 {
        exp_year += 2000;
    }
    if (exp_year, exp_month) < (year, month) {
        return Err("Your card's expiration date is in the past.");
    }
    Ok(())
}

fn cvc(v: &str) -> Result<(), &'static str> {
    let v = v.trim();
    if v.is_empty() {
        return Err("Enter your card's security code (CVC).");
    }
    if !v.chars().all(|c| c.is_ascii_digit()) || v.len() > 4 {
        return Err("Your card's security code is invalid: it is 3 or 4 digits.");
    }
    if v.len() < 3 {
        return Err("Your card's security code is incomplete: it is 3 or 4 digits.");
    }
    Ok(())
}

fn name(v: &str) -> Result<(), &'static str> {
    if v.trim().is_empty() {
        Err("Enter the name on your card.")
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: (i32, u32) = (2026, 5);

    fn card(number: &str, exp: &str, cvc: &str) -> Entered {
        Entered {
            email: String::new(),
            number: number.into(),
            exp: exp.into(),
            cvc: cvc.into(),
            name: "Grace Hopper".into(),
        }
    }

    fn fields(r: Result<Outcome, Vec<FieldError>>) -> Vec<Field> {
        r.err()
            .unwrap_or_default()
            .iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn test_cards_pay_or_decline_as_in_stripe_test_mode() {
        for n in [
            "4242424242424242",
            "4242 4242 4242 4242",
            "4242-4242-4242-4242",
            "5555 5555 5555 4444",
        ] {
            assert_eq!(
                check(&card(n, "12 / 34", "123"), TODAY),
                Ok(Outcome::Approved)
            );
        }
        for (n, reason, _) in DECLINES {
            assert!(luhn(n), "{n} is a Luhn-valid test number");
            match check(&card(n, "12/34", "1234"), TODAY) {
                Ok(Outcome::Declined { reason: r, .. }) => assert_eq!(r, reason),
                other => panic!("{n}: {other:?}"),
            }
        }
        let declined = check(&card("4000 0000 0000 0002", "12/34", "123"), TODAY);
        assert_eq!(
            declined,
            Ok(Outcome::Declined {
                reason: "generic_decline",
                message: "Your card was declined."
            })
        );
    }

    #[test]
    fn a_wrong_number_is_refused_with_its_reason() {
        for n in [
            "",
            "4242",
            "4242424242424241",
            "378282246310005",
            "4242x4242424242424",
            "42424242424242424242",
        ] {
            assert_eq!(
                fields(check(&card(n, "12/34", "123"), TODAY)),
                [Field::Number],
                "{n}"
            );
        }
    }

    #[test]
    fn the_expiry_is_mm_yy_and_not_in_the_past() {
        for ok in ["12/34", "12 / 34", "05/26", "5/26", "01/2030"] {
            assert!(
                check(&card("4242424242424242", ok, "123"), TODAY).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "", "1234", "13/30", "00/30", "04/26", "12/25", "ab/cd", "12/345", "12/",
        ] {
            assert_eq!(
                fields(check(&card("4242424242424242", bad, "123"), TODAY)),
                [Field::Exp],
                "{bad}"
            );
        }
    }

    #[test]
    fn cvc_name_and_email_are_checked_and_every_error_is_reported() {
        for bad in ["", "12", "12345", "12a"] {
            assert_eq!(
                fields(check(&card("4242424242424242", "12/34", bad), TODAY)),
                [Field::Cvc]
            );
        }
        let all = Entered {
            email: "not an email".into(),
            number: "1234".into(),
            exp: "99/99".into(),
            cvc: "1".into(),
            name: "  ".into(),
        };
        assert_eq!(
            fields(check(&all, TODAY)),
            [
                Field::Email,
                Field::Number,
                Field::Exp,
                Field::Cvc,
                Field::Name
            ]
        );
        let mut with_email = card("4242424242424242", "12/34", "123");
        with_email.email = "grace@example.com".into();
        assert_eq!(check(&with_email, TODAY), Ok(Outcome::Approved));
        with_email.email = "grace@example".into();
        assert_eq!(fields(check(&with_email, TODAY)), [Field::Email]);
    }
}
