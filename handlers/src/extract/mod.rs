//! Request extractors whose rejections use the API's error format.

mod field;
mod json;
mod path_id;
mod query;

pub use json::ValidJson;
pub use path_id::PathId;
pub use query::ValidQuery;
