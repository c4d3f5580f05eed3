//! A client id: the Dex instance's own id (e.g. `dex-a1b2c3d4`), recorded on first use.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    /// 3 to 64 characters: letters, digits, `.`, `_`, `-`, starting with a letter or digit.
    pub fn parse(input: &str) -> Option<Self> {
        let ok = (3..=64).contains(&input.len())
            && input
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && input
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::ClientId;

    #[test]
    fn instance_ids_pass_and_odd_ones_do_not() {
        assert!(ClientId::parse("dex-a1b2c3d4").is_some());
        for bad in ["", "ab", "-dex", "dex a", "dex<script>", &"d".repeat(65)] {
            assert!(ClientId::parse(bad).is_none(), "{bad}");
        }
    }
}
