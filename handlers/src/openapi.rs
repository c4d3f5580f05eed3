//! The machine-readable contract, generated from the handlers' annotations.

use utoipa::openapi::path::ParameterIn;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, RefOr, Response};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(title = "Poindexter Cloud API", description = "Identity and metered AI access for Dex instances."),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&Security),
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
/// so each handler's annotation need only list the statuses, and adds the two errors every
/// route of a kind can give: 401 where credentials are required (none or bad ones sent), 400
/// where a path or query parameter or a body is parsed (`PathId`, `ValidQuery`, `ValidJson`).
/// OAuth's routes are left alone: their errors follow RFC 6749 (`{"error": "invalid_grant"}`)
/// or are pages for a person.
/// Applied to the whole spec, once every route's paths are in (`ApiDoc`'s own modifiers run
/// before the routers add theirs).
pub fn with_error_responses(mut openapi: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    ErrorResponses.modify(&mut openapi);
    openapi
}

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
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let parsed =
                    op.request_body.is_some()
                        || op.parameters.iter().flatten().any(|p| {
                            matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query)
                        });
                let responses = &mut op.responses.responses;
                if secured && !responses.contains_key("401") {
                    responses.insert(
                        "401".into(),
                        RefOr::T(Response::new("No or bad credentials")),
                    );
                }
                if parsed && !responses.contains_key("400") {
                    let why = "A malformed parameter or body, naming the field";
                    responses.insert("400".into(), RefOr::T(Response::new(why)));
                }
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
