//! A password that meets the minimum policy. The value never appears in `Debug` output.

use crate::Invalid;

pub struct Password(String);

const MIN_CHARS: usize = 10;
const MAX_BYTES: usize = 256;

impl Password {
    /// Policy: 10+ characters, at most 256 bytes, not all one character class (letters only or
    /// digits only), and not a well-known weak password.
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        if input.chars().count() < MIN_CHARS {
            return Err(Invalid(format!(
                "password must be at least {MIN_CHARS} characters"
            )));
        }
        if input.len() > MAX_BYTES {
            return Err(Invalid(format!(
                "password must be at most {MAX_BYTES} bytes"
            )));
        }
        let letters = input.chars().any(|c| c.is_alphabetic());
        let others = input.chars().any(|c| !c.is_alphabetic());
        if !(letters && others) {
            return Err(Invalid(
                "password must mix letters with digits or symbols".into(),
            ));
        }
        let lower = input.to_lowercase();
        let distinct: std::collections::HashSet<char> = lower.chars().collect();
        if distinct.len() < 4 || COMMON.iter().any(|c| lower.starts_with(c)) {
            return Err(Invalid("password is too easy to guess".into()));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

const COMMON: &[&str] = &[
    "password", "qwerty", "12345678", "letmein", "iloveyou", "admin123", "welcome1",
];

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::Password;

    #[test]
    fn enforces_policy() {
        for weak in [
            "short1",
            "abcdefghijkl",
            "123456789012",
            "password123!",
            "aaaaaaaaa1",
        ] {
            assert!(Password::parse(weak).is_err(), "{weak} should be rejected");
        }
        assert!(Password::parse("correct horse 42").is_ok());
        assert!(Password::parse(&"ab1".repeat(100)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("correct horse 42").unwrap()),
            "Password(***)"
        );
    }
}
