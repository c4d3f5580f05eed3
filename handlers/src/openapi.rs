//! The machine-readable contract, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr, Response};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(title = "Poindexter Cloud API", description = "Identity and metered AI access for Dex instances."),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Security, &ErrorResponses),
    tags((name = "auth"), (name = "api-keys"), (name = "identity"), (name = "email"), (name = "calendar"),
        (name = "signal"), (name = "sms"), (name = "billing"), (name = "usage"), (name = "webhooks"), (name = "admin"), (name = "oauth"))
)]
pub struct ApiDoc;

/// Every error of the API: `{"error": {"code": …, "message": …, "field"?: …}}`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes `ApiError`'s body; never built from this type
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `payload_too_large`, `unprocessable`, `rate_limited`, `unavailable` or `internal`.
    code: String,
    message: String,
    /// The offending field or parameter of a 400, when there is one.
    #[schema(nullable = false)]
    field: Option<String>,
}

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

/// Gives every 4xx and 5xx answer that does not describe its own body the `ErrorBody` schema,
/// so each handler's annotation need only list the statuses. OAuth's routes are left alone:
/// their errors follow RFC 6749 (`{"error": "invalid_grant"}`) or are pages for a person.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if path.starts_with("/oauth/") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                for (status, response) in op.responses.responses.iter_mut() {
                    let is_error = status.starts_with('4') || status.starts_with('5');
                    if let (true, RefOr::T(response)) = (is_error, response) {
                        describe_error(response);
                    }
                }
            }
        }
    }
}

fn describe_error(response: &mut Response) {
    if response.content.is_empty() {
        let schema = RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"));
        response
            .content
            .insert("application/json".into(), Content::new(Some(schema)));
    }
    if response.description.is_empty() {
        response.description =
            "An error: `{\"error\": {\"code\", \"message\", \"field\"?}}`".into();
    }
}
