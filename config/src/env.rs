//! Typed reads of environment variables; every error names the variable.

use crate::Secret;
use base64::Engine as _;
use std::net::SocketAddr;

pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

pub(crate) struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for std::collections::HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        std::collections::HashMap::get(self, name).cloned()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configuration error: {0} is required but not set")]
    Missing(&'static str),
    #[error("configuration error: {var} is malformed: {reason}")]
    Malformed { var: &'static str, reason: String },
}

impl ConfigError {
    pub fn malformed(var: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            var,
            reason: reason.into(),
        }
    }
    pub fn variable(&self) -> &'static str {
        match self {
            Self::Missing(v) => v,
            Self::Malformed { var, .. } => var,
        }
    }
}

pub(crate) struct Reader<'a> {
    src: &'a dyn Source,
}

impl<'a> Reader<'a> {
    pub fn new(src: &'a dyn Source) -> Self {
        Self { src }
    }

    /// An empty value counts as unset.
    fn raw(&self, name: &str) -> Option<String> {
        self.src
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn string(&self, name: &'static str, default: Option<&str>) -> Result<String, ConfigError> {
        match (self.raw(name), default) {
            (Some(v), _) => Ok(v),
            (None, Some(d)) => Ok(d.to_owned()),
            (None, None) => Err(ConfigError::Missing(name)),
        }
    }

    pub fn optional_string(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        Ok(self.raw(name))
    }

    pub fn secret(&self, name: &'static str, required: bool) -> Result<Secret, ConfigError> {
        match self.raw(name) {
            Some(v) => Ok(Secret::new(v)),
            None if required => Err(ConfigError::Missing(name)),
            None => Ok(Secret::default()),
        }
    }

    pub fn addr(&self, name: &'static str, default: &str) -> Result<SocketAddr, ConfigError> {
        let v = self.string(name, Some(default))?;
        v.parse()
            .map_err(|_| ConfigError::malformed(name, format!("`{v}` is not a host:port address")))
    }

    pub fn url(&self, name: &'static str, default: Option<&str>) -> Result<String, ConfigError> {
        let v = self.string(name, default)?;
        if !(v.starts_with("http://") || v.starts_with("https://")) {
            return Err(ConfigError::malformed(
                name,
                "must be an http:// or https:// URL",
            ));
        }
        Ok(v.trim_end_matches('/').to_owned())
    }

    /// A comma-separated list of http(s) URLs (one per node of a cluster), at least one.
    pub fn url_list(&self, name: &'static str, default: &str) -> Result<Vec<String>, ConfigError> {
        let v = self.string(name, Some(default))?;
        v.split(',')
            .map(|item| {
                let item = item.trim();
                if item.is_empty() {
                    return Err(ConfigError::malformed(
                        name,
                        "has an empty entry: list URLs separated by single commas",
                    ));
                }
                if !(item.starts_with("http://") || item.starts_with("https://")) {
                    return Err(ConfigError::malformed(
                        name,
                        format!("`{item}` must be an http:// or https:// URL"),
                    ));
                }
                Ok(item.trim_end_matches('/').to_owned())
            })
            .collect()
    }

    pub fn u64(&self, name: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.raw(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| ConfigError::malformed(name, "must be a whole number")),
        }
    }

    pub fn key32_hex(&self, name: &'static str, required: bool) -> Result<[u8; 32], ConfigError> {
        let Some(v) = self.raw(name) else {
            return if required {
                Err(ConfigError::Missing(name))
            } else {
                Ok([0; 32])
            };
        };
        let bytes = hex::decode(&v)
            .map_err(|_| ConfigError::malformed(name, "must be 64 hex characters"))?;
        bytes
            .try_into()
            .map_err(|_| ConfigError::malformed(name, "must be 64 hex characters (32 bytes)"))
    }

    pub fn optional_key32_base64(
        &self,
        name: &'static str,
    ) -> Result<Option<[u8; 32]>, ConfigError> {
        let Some(v) = self.raw(name) else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&v)
            .map_err(|_| ConfigError::malformed(name, "must be base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| ConfigError::malformed(name, "must decode to exactly 32 bytes"))?;
        Ok(Some(key))
    }
}
