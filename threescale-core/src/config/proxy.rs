//! Loading the admin portal's proxy config JSON.
//!
//! CONTRACT: filled by the mapping/proxy-config work.

use super::{ConfigError, ServiceConfig};

/// Parses a proxy config JSON: a `{"proxy_config": {"content": service}}`
/// answer, a `{"services": [...]}` file, or a bare service object.
pub fn parse_proxy_config(
    json: &str,
    source_name: &str,
) -> Result<Vec<ServiceConfig>, ConfigError> {
    let _ = json;
    Err(ConfigError::new(source_name, "", "not implemented yet"))
}
