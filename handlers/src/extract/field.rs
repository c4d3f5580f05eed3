//! The 400 for a request part that did not deserialize, naming the field from
//! `serde_path_to_error`'s path (never from an error's text: a value can read like anything).

use crate::error::ApiError;

/// `path` as `serde_path_to_error` prints it (`.` for the whole document), `message` serde's.
pub fn bad_request(path: &serde_path_to_error::Path, message: String, what: &str) -> ApiError {
    let path = path.to_string();
    let at = (path != ".").then_some(path);
    // A missing, unknown or repeated field is reported at its parent: its own name is the one
    // serde puts in backquotes (a struct's field name or the key as sent, never a value).
    let named = ["missing field `", "unknown field `", "duplicate field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next())
        .map(str::to_owned);
    let field = match (at.clone(), named) {
        (Some(at), Some(name)) if at == name || at.ends_with(&format!(".{name}")) => Some(at),
        (Some(at), Some(name)) => Some(format!("{at}.{name}")),
        (None, Some(name)) => Some(name),
        (at, None) => at,
    };
    let message = match &at {
        Some(at) => format!("{what}{at}: {message}"),
        None => format!("{what}{message}"),
    };
    ApiError::BadRequest { field, message }
}
