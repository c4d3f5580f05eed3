//! A display name: trimmed, 1–100 characters, no control characters.

use crate::Invalid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = input.trim();
        if s.is_empty() || s.chars().count() > 100 {
            return Err(Invalid("name must be 1 to 100 characters".into()));
        }
        if s.chars().any(char::is_control) {
            return Err(Invalid("name must not contain control characters".into()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trims_and_bounds() {
        assert_eq!(super::UserName::parse(" Ada ").unwrap().as_str(), "Ada");
        assert!(super::UserName::parse("  ").is_err());
        assert!(super::UserName::parse("a\u{0}b").is_err());
        assert!(super::UserName::parse(&"x".repeat(101)).is_err());
    }
}
