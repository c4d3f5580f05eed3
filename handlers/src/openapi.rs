//! The machine-readable contract, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Poindexter Cloud API", description = "Identity and metered AI access for Dex instances."),
    modifiers(&Security),
    tags((name = "auth"), (name = "api-keys"), (name = "identity"), (name = "email"), (name = "calendar"),
        (name = "signal"), (name = "sms"), (name = "billing"), (name = "usage"), (name = "webhooks"), (name = "admin"), (name = "oauth"))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer =
            || SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build());
        components.add_security_scheme("bearer", bearer());
        components.add_security_scheme("admin", bearer());
    }
}
