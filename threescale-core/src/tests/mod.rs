//! Tests of the crate-private configuration parsers, which integration tests
//! cannot reach.

mod config_files;
mod request_settings;
