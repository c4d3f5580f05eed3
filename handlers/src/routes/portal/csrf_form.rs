//! A form whose only field that matters is its CSRF token (buttons that do one thing).

#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

impl crate::portal::csrf::WithCsrf for CsrfOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
