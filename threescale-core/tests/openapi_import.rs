//! Importing mapping rules from the OpenAPI 3 document in `examples/openapi.yaml`:
//! the exact rules, the generated names of operations without `operationId`, and
//! what the imported rules match.

use threescale_core::openapi::{self, OpenApiError};
use threescale_core::{MappingRule, MappingRules};

const DOCUMENT: &str = include_str!("../../examples/openapi.yaml");

fn triples(rules: &[MappingRule]) -> Vec<(&str, &str, &str)> {
    rules
        .iter()
        .map(|r| {
            (
                r.http_method.as_str(),
                r.pattern.as_str(),
                r.metric_system_name.as_str(),
            )
        })
        .collect()
}

#[test]
fn one_exact_rule_per_operation_under_the_prefix() {
    let import = openapi::import(DOCUMENT, Some("/v1")).expect("the example imports");
    // paths in document order; within a path: GET, PUT, POST, DELETE, OPTIONS, HEAD, PATCH
    assert_eq!(
        triples(&import.rules),
        [
            ("GET", "/v1/products$", "list_products"),
            ("POST", "/v1/products$", "create_product"),
            ("GET", "/v1/products/{productId}$", "get_product_by_id"),
            ("PUT", "/v1/products/{productId}$", "update_product"),
            (
                "DELETE",
                "/v1/products/{productId}$",
                "delete_products_product_id"
            ),
            (
                "GET",
                "/v1/orders/{orderId}/items/{itemId}$",
                "get_order_item"
            ),
            (
                "PATCH",
                "/v1/orders/{orderId}/items/{itemId}$",
                "patch_orders_order_id_items_item_id"
            ),
            ("GET", "/v1/health$", "health_check"),
        ]
    );
    for rule in &import.rules {
        assert_eq!(rule.delta, 1, "{rule:?}");
        assert!(!rule.last, "{rule:?}");
        assert_eq!(rule.querystring_parameters, None, "{rule:?}");
        assert_eq!(rule.position, None, "{rule:?}");
    }
}

#[test]
fn operations_without_an_operation_id_get_a_generated_name() {
    let import = openapi::import(DOCUMENT, Some("/v1")).unwrap();
    assert_eq!(
        import.generated_names,
        [
            (
                "DELETE /products/{productId}".to_string(),
                "delete_products_product_id".to_string()
            ),
            (
                "PATCH /orders/{orderId}/items/{itemId}".to_string(),
                "patch_orders_order_id_items_item_id".to_string()
            ),
        ]
    );
    // the generated name does not depend on the prefix
    let bare = openapi::import(DOCUMENT, None).unwrap();
    assert_eq!(bare.generated_names, import.generated_names);
}

#[test]
fn the_prefix_is_optional_and_its_trailing_slash_ignored() {
    let bare = openapi::import(DOCUMENT, None).unwrap();
    assert_eq!(bare.rules[0].pattern, "/products$");
    assert_eq!(bare.rules[7].pattern, "/health$");
    let slash = openapi::import(DOCUMENT, Some("/v1/")).unwrap();
    let plain = openapi::import(DOCUMENT, Some("/v1")).unwrap();
    assert_eq!(slash.rules, plain.rules);
}

#[test]
fn imported_rules_match_requests_exactly() {
    let rules = MappingRules::from_openapi(DOCUMENT, Some("/v1")).unwrap();
    assert_eq!(rules.len(), 8);
    let one = |method: &str, path: &str, query: Option<&str>| {
        let result = rules.matches(method, path, query);
        let metrics: Vec<(String, u64)> = result
            .usage
            .iter()
            .map(|(metric, value)| (metric.to_string(), value.amount()))
            .collect();
        (metrics, result.rules.to_vec())
    };
    let hit = |metric: &str, rule: usize| (vec![(metric.to_string(), 1)], vec![rule]);
    let none = (Vec::new(), Vec::new());

    assert_eq!(one("GET", "/v1/products", None), hit("list_products", 0));
    // the query string plays no part in an imported rule
    assert_eq!(
        one("GET", "/v1/products", Some("page=2")),
        hit("list_products", 0)
    );
    assert_eq!(one("POST", "/v1/products", None), hit("create_product", 1));
    assert_eq!(
        one("GET", "/v1/products/p-42", None),
        hit("get_product_by_id", 2)
    );
    assert_eq!(
        one("PUT", "/v1/products/p-42", None),
        hit("update_product", 3)
    );
    assert_eq!(
        one("DELETE", "/v1/products/p-42", None),
        hit("delete_products_product_id", 4)
    );
    assert_eq!(
        one("GET", "/v1/orders/o1/items/3", None),
        hit("get_order_item", 5)
    );
    assert_eq!(
        one("PATCH", "/v1/orders/o1/items/3", None),
        hit("patch_orders_order_id_items_item_id", 6)
    );
    assert_eq!(one("GET", "/v1/health", None), hit("health_check", 7));

    // `$`: no prefix matches, no trailing segments
    assert_eq!(one("GET", "/v1/products/p-42/reviews", None), none);
    assert_eq!(one("GET", "/v1/productsX", None), none);
    assert_eq!(one("GET", "/v1/health/deep", None), none);
    // a placeholder needs at least one character and never spans a `/`
    assert_eq!(one("GET", "/v1/products/", None), none);
    assert_eq!(one("GET", "/v1/orders/o1/items/", None), none);
    // methods the document does not list, and paths without the prefix
    assert_eq!(one("DELETE", "/v1/products", None), none);
    assert_eq!(one("HEAD", "/v1/products", None), none);
    assert_eq!(one("POST", "/v1/orders/o1/items/3", None), none);
    assert_eq!(one("GET", "/products", None), none);
}

#[test]
fn json_documents_are_imported_the_same_way() {
    let json = r#"{
        "openapi": "3.0.0",
        "info": { "title": "Pets", "version": "1" },
        "paths": {
            "/pets/{petId}": {
                "get": { "operationId": "getPetById", "responses": { "200": { "description": "ok" } } },
                "delete": { "responses": { "204": { "description": "gone" } } }
            }
        }
    }"#;
    let import = openapi::import(json, Some("/api")).unwrap();
    assert_eq!(
        triples(&import.rules),
        [
            ("GET", "/api/pets/{petId}$", "get_pet_by_id"),
            ("DELETE", "/api/pets/{petId}$", "delete_pets_pet_id"),
        ]
    );
}

#[test]
fn documents_that_give_no_usable_rules_are_refused() {
    let same_metric = r#"
openapi: 3.0.0
info: { title: Dup, version: "1" }
paths:
  /a:
    get: { operationId: fetch, responses: { "200": { description: ok } } }
  /b:
    get: { operationId: fetch, responses: { "200": { description: ok } } }
"#;
    match openapi::import(same_metric, None) {
        Err(OpenApiError::DuplicateMetric {
            metric,
            first,
            second,
        }) => {
            assert_eq!(metric, "fetch");
            assert_eq!(first, "GET /a");
            assert_eq!(second, "GET /b");
        }
        other => panic!("expected a duplicate metric, got {other:?}"),
    }
    let swagger = r#"{"swagger": "2.0", "info": {"title": "x", "version": "1"}, "paths": {}}"#;
    assert!(matches!(
        openapi::import(swagger, None),
        Err(OpenApiError::Parse(_))
    ));
    assert!(matches!(
        MappingRules::from_openapi("not: [an openapi", None),
        Err(OpenApiError::Parse(_))
    ));
}
