//! The chaos run (`scripts/chaos`, and a 60-second run in the test suite): the whole stack,
//! replicated, driven by many users while its parts are killed and its providers fail; then
//! the invariants that say nothing was lost, duplicated or left behind.

pub mod driver;
pub mod invariants;
pub mod monkey;
pub mod relay;
pub mod world;
