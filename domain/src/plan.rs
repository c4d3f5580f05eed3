//! Subscription plans and their prices. Money is integer microdollars.

use crate::Invalid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Basic,
    Pro,
}

impl Plan {
    pub fn parse(input: &str) -> Result<Self, Invalid> {
        match input.trim().to_ascii_lowercase().as_str() {
            "basic" => Ok(Self::Basic),
            "pro" => Ok(Self::Pro),
            other => Err(Invalid(format!(
                "unknown plan `{other}`: expected basic or pro"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Pro => "pro",
        }
    }

    pub fn monthly_price_microdollars(self) -> i64 {
        match self {
            Self::Basic => 50_000_000,
            Self::Pro => 250_000_000,
        }
    }

    pub fn included_tokens(self) -> i64 {
        match self {
            Self::Basic => 5_000_000,
            Self::Pro => 30_000_000,
        }
    }

    /// Overage price per one million input tokens.
    pub fn overage_input_per_mtok_microdollars(self) -> i64 {
        match self {
            Self::Basic => 3_000_000,
            Self::Pro => 2_500_000,
        }
    }

    /// Overage price per one million output tokens.
    pub fn overage_output_per_mtok_microdollars(self) -> i64 {
        match self {
            Self::Basic => 15_000_000,
            Self::Pro => 12_000_000,
        }
    }
}
