//! Mapping rules from an OpenAPI 3.0 document, as 3scale users generate them in CI.
//!
//! One rule per operation: the method, the path with its `{param}` placeholders
//! and a `$` (an exact match), delta 1, and the metric named after the
//! `operationId`, snake-cased (`getPetById` → `get_pet_by_id`). An operation
//! without `operationId` gets a generated name from its method and path
//! (`GET /pets/{petId}` → `get_pets_pet_id`), and a note says so. An optional
//! prefix (e.g. the public base path) is put in front of every path.

use crate::mapping::{MappingError, MappingRule, MappingRules};

/// The document could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    /// Neither JSON nor YAML of an OpenAPI 3.0 document.
    #[error("not an OpenAPI 3.0 document: {0}")]
    Parse(String),
    /// A path or operation gives no usable rule.
    #[error("{0}")]
    Rule(#[from] MappingError),
    /// Two operations give the same metric name.
    #[error("operations {first} and {second} both map to metric {metric:?}")]
    DuplicateMetric {
        /// The metric.
        metric: String,
        /// The first operation (`METHOD path`).
        first: String,
        /// The second one.
        second: String,
    },
}

/// The rules imported from a document, with notes on generated names.
#[derive(Clone, Debug)]
pub struct OpenApiImport {
    /// One rule per operation: paths in document order, and within a path the
    /// methods in the order GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH, TRACE.
    pub rules: Vec<MappingRule>,
    /// Operations without `operationId`, and the name generated for each.
    pub generated_names: Vec<(String, String)>,
}

/// Parses a JSON or YAML OpenAPI 3.0 document and derives one rule per operation.
///
/// ```
/// let doc = r#"
/// openapi: 3.0.0
/// info: { title: Pets, version: "1" }
/// paths:
///   /pets/{petId}:
///     get: { operationId: getPetById, responses: { "200": { description: ok } } }
///     delete: { responses: { "204": { description: gone } } }
/// "#;
/// let import = threescale_core::openapi::import(doc, Some("/v1")).unwrap();
/// assert_eq!(import.rules[0].pattern, "/v1/pets/{petId}$");
/// assert_eq!(import.rules[0].metric_system_name, "get_pet_by_id");
/// assert_eq!(import.rules[1].metric_system_name, "delete_pets_pet_id");
/// ```
pub fn import(document: &str, prefix: Option<&str>) -> Result<OpenApiImport, OpenApiError> {
    let api: openapiv3::OpenAPI = if document.trim_start().starts_with('{') {
        serde_json::from_str(document).map_err(|e| OpenApiError::Parse(e.to_string()))?
    } else {
        serde_yaml_ng::from_str(document).map_err(|e| OpenApiError::Parse(e.to_string()))?
    };
    if !api.openapi.starts_with("3.") {
        return Err(OpenApiError::Parse(format!(
            "version {:?}: only OpenAPI 3 documents are supported",
            api.openapi
        )));
    }
    from_document(&api, prefix)
}

/// Derives the rules from a parsed document.
pub fn from_document(
    api: &openapiv3::OpenAPI,
    prefix: Option<&str>,
) -> Result<OpenApiImport, OpenApiError> {
    let prefix = prefix.unwrap_or("").trim_end_matches('/');
    let mut rules = Vec::new();
    let mut generated_names = Vec::new();
    let mut seen: Vec<(String, String)> = Vec::new();
    for (path, item) in api.paths.paths.iter() {
        let Some(item) = item.as_item() else {
            continue;
        };
        for (method, operation) in item.iter() {
            let method = method.to_ascii_uppercase();
            let what = format!("{method} {path}");
            let metric = match &operation.operation_id {
                Some(id) if !snake_case(id).is_empty() => snake_case(id),
                _ => {
                    let name = snake_case(&format!("{method} {path}"));
                    generated_names.push((what.clone(), name.clone()));
                    name
                }
            };
            if let Some((_, first)) = seen.iter().find(|(m, _)| *m == metric) {
                return Err(OpenApiError::DuplicateMetric {
                    metric,
                    first: first.clone(),
                    second: what,
                });
            }
            seen.push((metric.clone(), what));
            rules.push(MappingRule {
                http_method: method,
                pattern: format!("{prefix}{path}$"),
                querystring_parameters: None,
                metric_system_name: metric,
                delta: 1,
                last: false,
                position: None,
            });
        }
    }
    // Compile once to reject what the matcher would refuse.
    MappingRules::new(rules.clone())?;
    Ok(OpenApiImport {
        rules,
        generated_names,
    })
}

impl MappingRules {
    /// Compiled rules from an OpenAPI 3.0 document (JSON or YAML); see [`import`].
    pub fn from_openapi(document: &str, prefix: Option<&str>) -> Result<Self, OpenApiError> {
        Ok(MappingRules::new(import(document, prefix)?.rules)?)
    }
}

/// `getPetById` → `get_pet_by_id`; `GET /pets/{petId}` → `get_pets_pet_id`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut previous_lower_or_digit = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if c.is_ascii_uppercase() && previous_lower_or_digit && !out.ends_with('_') {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower_or_digit = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            previous_lower_or_digit = false;
        }
    }
    out.trim_end_matches('_').to_string()
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_cases_like_a_metric_name() {
        assert_eq!(snake_case("getPetById"), "get_pet_by_id");
        assert_eq!(snake_case("listPets"), "list_pets");
        assert_eq!(
            snake_case("GET /pets/{petId}/photos"),
            "get_pets_pet_id_photos"
        );
        assert_eq!(snake_case("create-order.v2"), "create_order_v2");
        assert_eq!(snake_case("HTTPStatus"), "httpstatus");
    }
}
