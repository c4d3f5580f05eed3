//! An email address, trimmed and lower-cased, with a syntax check strict enough to reject
//! what a mail server would.

use crate::Invalid;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        let s = input.trim().to_lowercase();
        let bad = |why: &str| {
            Err(Invalid(format!(
                "`{}` is not a valid email address: {why}",
                input.trim()
            )))
        };
        if s.is_empty() {
            return Err(Invalid("email must not be empty".into()));
        }
        if s.len() > 254 {
            return bad("longer than 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return bad("missing @");
        };
        if local.is_empty() || local.len() > 64 {
            return bad("the part before @ must be 1 to 64 characters");
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return bad("misplaced dot before @");
        }
        let local_ok = local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        if !local_ok {
            return bad("unexpected character before @");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2 {
            return bad("the domain needs a dot");
        }
        for label in &labels {
            let label_ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !label_ok {
                return bad("invalid domain");
            }
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn normalises_case_and_whitespace() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "plain",
            "@x.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@-b.com",
            "a..b@c.com",
            ".a@b.com",
            "a@b..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org", "x_y-z@a-b.io"] {
            assert!(Email::parse(ok).is_ok(), "{ok} should be accepted");
        }
    }
}
