//! Stripe's form encoding (`a[b][0]=x`), read as flat key/value pairs.

pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Self(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Values of `name[0]`, `name[1]`, … or `name[]`, in order.
    pub fn list(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}[");
        self.0
            .iter()
            .filter(|(k, _)| {
                k.strip_prefix(&prefix)
                    .and_then(|r| r.strip_suffix(']'))
                    .is_some_and(|i| i.is_empty() || i.chars().all(|c| c.is_ascii_digit()))
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `name[key]=value` pairs as a JSON object (Stripe's metadata).
    pub fn map(&self, name: &str) -> serde_json::Map<String, serde_json::Value> {
        let prefix = format!("{name}[");
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix(&prefix)?.strip_suffix(']')?;
                (!key.contains('[')).then(|| (key.to_owned(), serde_json::Value::String(v.clone())))
            })
            .collect()
    }

    /// Line items `line_items[i][price]` / `[quantity]`.
    pub fn line_items(&self) -> Vec<(String, Option<u64>)> {
        (0..)
            .map_while(|i| {
                let price = self.get(&format!("line_items[{i}][price]"))?;
                let qty = self
                    .get(&format!("line_items[{i}][quantity]"))
                    .and_then(|q| q.parse().ok());
                Some((price.to_owned(), qty))
            })
            .collect()
    }
}
