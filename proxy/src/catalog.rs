//! Which provider serves a model, and what its tokens cost (microdollars per million tokens).
//! Prices are list prices; a model not listed falls back to its family's entry.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    OpenAi,
    Anthropic,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Prices {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

const fn p(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Prices {
    Prices {
        input,
        output,
        cache_read,
        cache_write,
    }
}

/// Longest prefixes first: the first match wins.
const TABLE: &[(&str, Provider, Prices)] = &[
    (
        "claude-opus-4",
        Provider::Anthropic,
        p(15_000_000, 75_000_000, 1_500_000, 18_750_000),
    ),
    (
        "claude-3-opus",
        Provider::Anthropic,
        p(15_000_000, 75_000_000, 1_500_000, 18_750_000),
    ),
    (
        "claude-haiku-4",
        Provider::Anthropic,
        p(1_000_000, 5_000_000, 100_000, 1_250_000),
    ),
    (
        "claude-3-5-haiku",
        Provider::Anthropic,
        p(800_000, 4_000_000, 80_000, 1_000_000),
    ),
    (
        "claude-3-haiku",
        Provider::Anthropic,
        p(250_000, 1_250_000, 30_000, 300_000),
    ),
    (
        "claude-",
        Provider::Anthropic,
        p(3_000_000, 15_000_000, 300_000, 3_750_000),
    ),
    (
        "gpt-4o-mini",
        Provider::OpenAi,
        p(150_000, 600_000, 75_000, 0),
    ),
    (
        "gpt-4o",
        Provider::OpenAi,
        p(2_500_000, 10_000_000, 1_250_000, 0),
    ),
    (
        "gpt-4.1-nano",
        Provider::OpenAi,
        p(100_000, 400_000, 25_000, 0),
    ),
    (
        "gpt-4.1-mini",
        Provider::OpenAi,
        p(400_000, 1_600_000, 100_000, 0),
    ),
    (
        "gpt-4.1",
        Provider::OpenAi,
        p(2_000_000, 8_000_000, 500_000, 0),
    ),
    ("gpt-5-nano", Provider::OpenAi, p(50_000, 400_000, 5_000, 0)),
    (
        "gpt-5-mini",
        Provider::OpenAi,
        p(250_000, 2_000_000, 25_000, 0),
    ),
    (
        "gpt-5",
        Provider::OpenAi,
        p(1_250_000, 10_000_000, 125_000, 0),
    ),
    (
        "gpt-",
        Provider::OpenAi,
        p(2_500_000, 10_000_000, 1_250_000, 0),
    ),
    ("chatgpt-", Provider::OpenAi, p(5_000_000, 15_000_000, 0, 0)),
    (
        "o1-mini",
        Provider::OpenAi,
        p(1_100_000, 4_400_000, 550_000, 0),
    ),
    (
        "o1",
        Provider::OpenAi,
        p(15_000_000, 60_000_000, 7_500_000, 0),
    ),
    (
        "o3-mini",
        Provider::OpenAi,
        p(1_100_000, 4_400_000, 550_000, 0),
    ),
    ("o3", Provider::OpenAi, p(2_000_000, 8_000_000, 500_000, 0)),
    (
        "o4-mini",
        Provider::OpenAi,
        p(1_100_000, 4_400_000, 275_000, 0),
    ),
    (
        "text-embedding-3-small",
        Provider::OpenAi,
        p(20_000, 0, 0, 0),
    ),
    (
        "text-embedding-3-large",
        Provider::OpenAi,
        p(130_000, 0, 0, 0),
    ),
    ("text-embedding-", Provider::OpenAi, p(100_000, 0, 0, 0)),
];

/// The models `GET /v1/models` lists.
pub const LISTED: &[(&str, Provider, &str)] = &[
    ("gpt-4o", Provider::OpenAi, "GPT-4o"),
    ("gpt-4o-mini", Provider::OpenAi, "GPT-4o mini"),
    ("gpt-4.1", Provider::OpenAi, "GPT-4.1"),
    ("gpt-4.1-mini", Provider::OpenAi, "GPT-4.1 mini"),
    ("o3-mini", Provider::OpenAi, "o3-mini"),
    (
        "text-embedding-3-small",
        Provider::OpenAi,
        "text-embedding-3-small",
    ),
    (
        "text-embedding-3-large",
        Provider::OpenAi,
        "text-embedding-3-large",
    ),
    ("claude-opus-4-1", Provider::Anthropic, "Claude Opus 4.1"),
    (
        "claude-sonnet-4-5",
        Provider::Anthropic,
        "Claude Sonnet 4.5",
    ),
    ("claude-haiku-4-5", Provider::Anthropic, "Claude Haiku 4.5"),
];

pub fn lookup(model: &str) -> Option<(Provider, Prices)> {
    TABLE
        .iter()
        .find(|(prefix, _, _)| model.starts_with(prefix))
        .map(|(_, provider, prices)| (*provider, *prices))
}

/// Token counts of one request as metered. `input` counts every prompt token, cached or not;
/// `cache_read` / `cache_write` say how many of them were served from or written to a cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

impl Prices {
    /// Cost in microdollars, rounded up so usage is never under-billed.
    pub fn cost(&self, t: &Tokens) -> u64 {
        let uncached = t
            .input
            .saturating_sub(t.cache_read.saturating_add(t.cache_write));
        let micro_millionths = u128::from(uncached) * u128::from(self.input)
            + u128::from(t.output) * u128::from(self.output)
            + u128::from(t.cache_read) * u128::from(self.cache_read)
            + u128::from(t.cache_write) * u128::from(self.cache_write);
        u64::try_from(micro_millionths.div_ceil(1_000_000)).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_models_to_providers() {
        assert_eq!(
            lookup("claude-sonnet-4-5").map(|x| x.0),
            Some(Provider::Anthropic)
        );
        assert_eq!(lookup("gpt-4o-mini").map(|x| x.0), Some(Provider::OpenAi));
        assert_eq!(lookup("o3-mini").map(|x| x.0), Some(Provider::OpenAi));
        assert!(lookup("llama-3").is_none());
    }

    #[test]
    fn prices_tokens_in_microdollars() {
        let (_, prices) = lookup("gpt-4o-mini").unwrap();
        // 1M input at $0.15 + 1M output at $0.60.
        let t = Tokens {
            input: 1_000_000,
            output: 1_000_000,
            ..Tokens::default()
        };
        assert_eq!(prices.cost(&t), 750_000);
        let (_, sonnet) = lookup("claude-sonnet-4-5").unwrap();
        let cached = Tokens {
            input: 1_000,
            output: 0,
            cache_read: 1_000,
            cache_write: 0,
        };
        assert_eq!(sonnet.cost(&cached), 300);
        assert_eq!(
            sonnet.cost(&Tokens {
                input: 1,
                ..Tokens::default()
            }),
            3
        );
        // An absurd report from an upstream saturates instead of overflowing.
        let absurd = Tokens {
            input: u64::MAX,
            output: u64::MAX,
            cache_read: u64::MAX,
            cache_write: u64::MAX,
        };
        assert_eq!(sonnet.cost(&absurd), u64::MAX);
    }
}
