//! A phone number in E.164 form: `+` and 8 to 15 digits, nothing else.

use crate::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = input.trim();
        let ok = s.strip_prefix('+').is_some_and(|digits| {
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(Invalid(format!(
                "`{s}` is not an E.164 phone number: write `+` and 8 to 15 digits, e.g. +15551234567"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::PhoneNumber;

    #[test]
    fn accepts_e164_only() {
        for ok in ["+15551234567", "+4930123456", " +12345678 "] {
            assert!(PhoneNumber::parse(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "",
            "15551234567",
            "+1555",
            "+1234567890123456",
            "+1 555 123 4567",
            "+1555123456a",
            "++15551234567",
        ] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
