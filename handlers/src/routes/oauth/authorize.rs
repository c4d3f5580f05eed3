//! `GET /oauth/authorize`: the whole connect flow in one place. Each visit works out where
//! the person stands (not logged in → sign up; no plan → plans; paying or provisioning →
//! live progress; ready → consent, or straight back to Dex when this very flow created the
//! account) and shows that. `POST /oauth/authorize` is the consent form's answer.

use super::authorize_pages::{plan_cards, ConsentPage, PlansPage, ProgressPage};
use crate::error::ApiError;
use crate::oauth::authorize_request::{
    code_redirect, error_redirect, from_query, Authorize, AuthorizeParams, Refusal,
};
use crate::portal::browser::BrowserId;
use crate::portal::connect_state::{standing, Phase};
use crate::portal::csrf::CsrfForm;
use crate::portal::page::{self, Chrome};
use crate::portal::{csrf, session::PortalUser};
use crate::state::AppState;
use axum::extract::{Extension, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

/// Added to the return URL of Checkout, so the page knows to wait for Stripe's webhook.
pub const BACK_FROM_CHECKOUT: &str = "checkout=done";

fn chrome(state: &AppState, browser: &BrowserId, user: Option<&PortalUser>, title: &str) -> Chrome {
    Chrome {
        title: title.to_owned(),
        email: user.map(|u| u.user.email.clone()),
        active: "",
        csrf: csrf::token(state, browser),
    }
}

/// Checks a request against the client's recorded redirect URI.
async fn check(
    state: &AppState,
    browser: &BrowserId,
    params: &AuthorizeParams,
) -> Result<Authorize, Response> {
    let recorded = match params
        .client_id
        .as_deref()
        .and_then(crate::oauth::client_id::ClientId::parse)
    {
        Some(c) => db::oauth::client_redirect(&state.pool, c.as_str())
            .await
            .map_err(|e| ApiError::from(e).into_response())?,
        None => None,
    };
    params.check(recorded.as_deref()).map_err(|r| match r {
        Refusal::Page(msg) => page::error(
            StatusCode::BAD_REQUEST,
            "This connection request is not valid",
            &msg,
            csrf::token(state, browser),
        ),
        Refusal::Redirect(to) => Redirect::to(&to).into_response(),
    })
}

#[utoipa::path(get, path = "/oauth/authorize", tag = "oauth",
    params(("response_type" = String, Query, description = "code"),
           ("client_id" = String, Query, description = "The Dex instance's id, e.g. dex-a1b2c3d4"),
           ("redirect_uri" = String, Query, description = "Loopback http (any port) or https"),
           ("state" = Option<String>, Query),
           ("code_challenge" = String, Query, description = "BASE64URL(SHA256(code_verifier))"),
           ("code_challenge_method" = String, Query, description = "S256")),
    responses((status = 200, description = "A page of the connect flow (sign-up, plan, progress or consent)"),
              (status = 303, description = "To sign-up, or back to the client with a code or an error"),
              (status = 400, description = "Unknown client or redirect_uri: an error page, never a redirect")))]
pub async fn show(
    State(state): State<AppState>,
    Extension(browser): Extension<BrowserId>,
    user: Option<PortalUser>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let params = from_query(&query);
    let req = match check(&state, &browser, &params).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    let here = params.to_path();
    let Some(user) = user else {
        let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
        return Redirect::to(&format!("/signup?next={next}")).into_response();
    };
    let back_from_checkout = query.split('&').any(|p| p == BACK_FROM_CHECKOUT);
    match flow(&state, &browser, &user, &req, &params, back_from_checkout).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn flow(
    state: &AppState,
    browser: &BrowserId,
    user: &PortalUser,
    req: &Authorize,
    params: &AuthorizeParams,
    back_from_checkout: bool,
) -> Result<Response, ApiError> {
    let here = params.to_path();
    let client = req.client_id.as_str().to_owned();
    let standing = standing(state, user.user.id, back_from_checkout).await?;
    let cancel = Some(params.pairs());
    let res = match standing.phase {
        Phase::Plans => page::render(&PlansPage {
            chrome: chrome(state, browser, Some(user), "Choose your plan"),
            plans: plan_cards(),
            connecting: Some(client),
            next: here,
            notice: None,
            cancel,
        }),
        Phase::Suspended => page::error(
            StatusCode::PAYMENT_REQUIRED,
            "Your subscription needs attention",
            "A payment did not go through, so your identity is paused. Update your payment method under Billing, then connect Dex again.",
            csrf::token(state, browser),
        ),
        Phase::Payment | Phase::Provisioning | Phase::Failed => {
            let failure = match standing.phase {
                Phase::Failed => Some(
                    standing
                        .identity
                        .as_ref()
                        .and_then(|i| i.failure_reason.as_deref().map(crate::portal::format::reason))
                        .unwrap_or_else(|| "provisioning failed".into()),
                ),
                _ => None,
            };
            let mut next = here;
            if back_from_checkout {
                next.push('&');
                next.push_str(BACK_FROM_CHECKOUT);
            }
            page::render(&ProgressPage {
                chrome: chrome(state, browser, Some(user), "Setting up your identity"),
                phase: standing.phase.as_str(),
                steps: standing.steps,
                failure,
                next,
                cancel,
            })
        }
        Phase::Ready => {
            let auto = user.auto_approve_client.as_deref() == Some(client.as_str())
                && db::portal_sessions::take_auto_approval(&state.pool, &user.session_hash, &client)
                    .await?;
            if auto {
                return approve(state, user, req).await;
            }
            let identity = standing.identity;
            page::render(&ConsentPage {
                chrome: chrome(state, browser, Some(user), "Authorize Poindexter instance"),
                client,
                email: identity.as_ref().and_then(|i| i.email.clone()),
                phone: identity
                    .as_ref()
                    .and_then(|i| i.phone_number.as_deref().map(crate::portal::format::phone)),
                // Host and port: redirect URIs never carry credentials.
                redirect_host: req.redirect_uri.url().authority().to_owned(),
                hidden: params.pairs(),
            })
        }
    };
    Ok(res)
}

/// Records the client on first use, issues a code and sends the browser back to Dex.
async fn approve(
    state: &AppState,
    user: &PortalUser,
    req: &Authorize,
) -> Result<Response, ApiError> {
    let recorded = db::oauth::record_client(
        &state.pool,
        req.client_id.as_str(),
        req.redirect_uri.as_str(),
    )
    .await?;
    if !req.redirect_uri.matches(&recorded) {
        // Another request recorded this client a moment ago with another URI.
        return Err(ApiError::Conflict(
            "this instance is already connected with another redirect URI".into(),
        ));
    }
    let code = crate::oauth::tokens::issue_code(
        &state.pool,
        user.user.id,
        req.client_id.as_str(),
        req.redirect_uri.as_str(),
        &req.code_challenge,
    )
    .await?;
    tracing::info!(
        client_id = req.client_id.as_str(),
        "authorization code issued"
    );
    Ok(Redirect::to(&code_redirect(
        &req.redirect_uri,
        &code,
        req.state.as_deref(),
    ))
    .into_response())
}

/// The consent form (and every page's "Cancel"): the request's fields, the CSRF token, and
/// the decision.
#[derive(serde::Deserialize)]
pub struct Decision {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    scope: Option<String>,
}

#[utoipa::path(post, path = "/oauth/authorize", tag = "oauth",
    request_body(content_type = "application/x-www-form-urlencoded",
                 description = "The consent form: the authorization request's fields, csrf, and decision=approve|deny"),
    responses((status = 303, description = "Back to the client with code and state, or error=access_denied"),
              (status = 400, description = "Unknown client or redirect_uri"),
              (status = 403, description = "Missing or wrong CSRF token: nothing done"),
              (status = 415, description = "Not a form post (`application/x-www-form-urlencoded`)")))]
pub async fn decide(
    State(state): State<AppState>,
    Extension(browser): Extension<BrowserId>,
    user: Option<PortalUser>,
    CsrfForm(form): CsrfForm<Decision>,
) -> Response {
    let params = AuthorizeParams {
        response_type: form.response_type,
        client_id: form.client_id,
        redirect_uri: form.redirect_uri,
        state: form.state,
        code_challenge: form.code_challenge,
        code_challenge_method: form.code_challenge_method,
        scope: form.scope,
    };
    let req = match check(&state, &browser, &params).await {
        Ok(r) => r,
        Err(res) => return res,
    };
    if form.decision != "approve" {
        tracing::info!(
            client_id = req.client_id.as_str(),
            "connection cancelled by the user"
        );
        return Redirect::to(&error_redirect(
            &req.redirect_uri,
            "access_denied",
            "the user cancelled the connection",
            req.state.as_deref(),
        ))
        .into_response();
    }
    let Some(user) = user else {
        let next: String =
            url::form_urlencoded::byte_serialize(params.to_path().as_bytes()).collect();
        return Redirect::to(&format!("/login?next={next}")).into_response();
    };
    let ready = match standing(&state, user.user.id, false).await {
        Ok(s) => s.phase == Phase::Ready,
        Err(e) => return e.into_response(),
    };
    if !ready {
        // The identity changed since the page was shown: show where things stand now.
        return Redirect::to(&params.to_path()).into_response();
    }
    match approve(&state, &user, &req).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

impl crate::portal::csrf::WithCsrf for Decision {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}
