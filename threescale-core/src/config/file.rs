//! The project's own configuration file (YAML or JSON).
//!
//! Placeholder: filled by the mapping/config work.

use std::path::Path;

use super::{Config, ConfigError};

/// Parses the project's config format.
pub fn parse_project_config(text: &str, source_name: &str) -> Result<Config, ConfigError> {
    let _ = text;
    Err(ConfigError::new(source_name, "", "not implemented yet"))
}

/// Loads a project config or a proxy config JSON file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    Err(ConfigError::new(
        path.display().to_string(),
        "",
        "not implemented yet",
    ))
}
