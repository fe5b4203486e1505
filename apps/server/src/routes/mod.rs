//! HTTP routes: DTOs in, use case, DTOs out. No business rules here.
//!
//! Each handler carries its route (`#[get("…")]`) and its OpenAPI operation
//! (`#[utoipa::path(…)]`) on the same function, and is registered once, in
//! [`register`]: the same registration serves requests and builds the
//! OpenAPI document ([`document`]), so the two cannot drift apart.

pub(crate) mod admin;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod bundles;
pub(crate) mod configs;
pub(crate) mod deployments;
pub(crate) mod device_api;
pub(crate) mod devices;
pub(crate) mod meta;
pub(crate) mod signals;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use actix_web::dev::ResourceDef;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::OpenApi as _;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{OpenApi, PathItem, Ref, RefOr};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_actix_web::{AppExt as _, scope};

use crate::extract::BodyLimit;
use crate::problem::{ApiError, PROBLEM_JSON, ProblemKind};

/// Account and owner routes accept bodies up to 16 KiB.
const ACCOUNT_BODY_LIMIT: usize = 16 * 1024;
/// Publishing a signal (or creating a deployment) may name 1000 devices
/// (about 40 KiB).
const SIGNAL_BODY_LIMIT: usize = 64 * 1024;
/// Device routes accept bodies up to 64 KiB.
const DEVICE_BODY_LIMIT: usize = 64 * 1024;

/// Registers every route on an actix app (see [`crate::startup`]).
pub fn configure(cfg: &mut web::ServiceConfig) {
    // Built now rather than on the first request that needs it.
    LazyLock::force(&DOCUMENT);
    register(&mut ServiceConfig::new(cfg));
}

/// The one list of routes. Each `service(handler)` adds the handler's
/// route and its OpenAPI operation.
fn register(cfg: &mut ServiceConfig<'_>) {
    cfg.app_data(web::QueryConfig::default().error_handler(|error, _req| {
        ApiError::new(
            ProblemKind::MalformedQuery,
            format!("The query string is invalid: {error}."),
        )
        .into()
    }))
    .service(
        scope("/api/v1")
            .app_data(BodyLimit(ACCOUNT_BODY_LIMIT))
            // The device routes first: they carry most of the traffic, and
            // the router tries the scopes in this order.
            .service(
                scope("/device")
                    .app_data(BodyLimit(DEVICE_BODY_LIMIT))
                    .configure(device_api::configure)
                    .configure(bundles::configure_device)
                    .configure(deployments::configure_device),
            )
            .service(scope("/auth").configure(auth::configure))
            .service(
                scope("/devices")
                    .configure(devices::configure)
                    .configure(deployments::configure_labels),
            )
            .service(scope("/audit").configure(audit::configure))
            .service(scope("/api-keys").configure(api_keys::configure))
            .service(scope("/admin").configure(admin::configure))
            .service(scope("/config").configure(configs::configure_account))
            // The upload streams its raw body (EAGATE_BUNDLE_MAX_BYTES).
            .service(scope("/bundles").configure(bundles::configure))
            .service(
                scope("/deployments")
                    // Up to 1000 target device ids.
                    .app_data(BodyLimit(SIGNAL_BODY_LIMIT))
                    .configure(deployments::configure),
            )
            .service(
                scope("/signals")
                    // Up to 1000 target device ids.
                    .app_data(BodyLimit(SIGNAL_BODY_LIMIT))
                    .configure(signals::configure),
            )
            .default_service(web::to(not_found)),
    )
    .configure(meta::configure)
    .default_service(web::to(not_found));
}

/// The OpenAPI document: the metadata in [`crate::openapi`] and the
/// operations of every route [`register`] adds.
fn build_document() -> OpenApi {
    let (_, mut api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(crate::openapi::ApiDoc::openapi())
        .configure(register)
        .split_for_parts();
    crate::openapi::finish(&mut api);
    api
}

struct Document {
    json: String,
    /// Every path template and the methods it answers, for 405s.
    allowed: Vec<(ResourceDef, String)>,
}

static DOCUMENT: LazyLock<Document> = LazyLock::new(|| {
    let api = build_document();
    let mut allowed: Vec<(ResourceDef, String)> = api
        .paths
        .paths
        .iter()
        .map(|(path, item)| (ResourceDef::new(path.as_str()), methods(item).join(", ")))
        .collect();
    allowed.extend(
        meta::UNDOCUMENTED_GET_ROUTES
            .iter()
            .map(|path| (ResourceDef::new(*path), "GET".to_owned())),
    );
    let json = api
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    Document { json, allowed }
});

/// `path` itself when it is a route without parameters (so it is its own
/// route template), as a `'static` string for metric labels.
pub(crate) fn static_route(path: &str) -> Option<&'static str> {
    static STATIC_ROUTES: LazyLock<foldhash::HashSet<&'static str>> = LazyLock::new(|| {
        DOCUMENT
            .allowed
            .iter()
            .filter_map(|(def, _)| def.pattern())
            .filter(|pattern| !pattern.contains('{'))
            .collect()
    });
    STATIC_ROUTES.get(path).copied()
}

/// Every route template the server answers (documented and not).
#[cfg(test)]
pub(crate) fn route_templates() -> Vec<String> {
    DOCUMENT
        .allowed
        .iter()
        .filter_map(|(def, _)| def.pattern().map(str::to_owned))
        .collect()
}

/// The OpenAPI document as pretty JSON, exactly as committed in
/// docs/openapi.json (`just openapi` regenerates it; a test fails when it
/// is stale).
pub fn document() -> &'static str {
    &DOCUMENT.json
}

/// The methods a path item answers, in a fixed order.
fn methods(item: &PathItem) -> Vec<&'static str> {
    let operations: [(&str, &Option<Operation>); 5] = [
        ("GET", &item.get),
        ("POST", &item.post),
        ("PUT", &item.put),
        ("PATCH", &item.patch),
        ("DELETE", &item.delete),
    ];
    operations
        .into_iter()
        .filter(|(_, op)| op.is_some())
        .map(|(name, _)| name)
        .collect()
}

/// Answers what no route matched: 405 with an `Allow` header (RFC 9110)
/// when the path exists with other methods, else 404.
async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let allowed = DOCUMENT
        .allowed
        .iter()
        .find(|(def, _)| def.is_match(req.path()))
        .map(|(_, allow)| allow.as_str());
    Err(match allowed {
        Some(allow) => ApiError::new(
            ProblemKind::MethodNotAllowed,
            format!("This resource supports only: {allow}."),
        )
        .with_header(
            header::ALLOW,
            HeaderValue::from_str(allow).unwrap_or(HeaderValue::from_static("GET")),
        ),
        None => ApiError::new(ProblemKind::NotFound, "No such resource."),
    })
}

/// The error responses every operation declares: RFC 9457 problems
/// (`responses(…, Problems)` in each `#[utoipa::path]`).
pub(crate) struct Problems;

impl utoipa::IntoResponses for Problems {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    PROBLEM_JSON,
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("Problem")))
                        .build(),
                )
                .build()
                .into()
        };
        BTreeMap::from([
            ("4XX".to_owned(), problem("A problem: see its `type` (or `code`)")),
            ("5XX".to_owned(), problem("Server or dependency failure")),
        ])
    }
}

/// A string schema that accepts exactly `values` (an OpenAPI `enum`).
pub(crate) fn text_enum<'a>(values: impl IntoIterator<Item = &'a str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

/// The same, or `null` (for optional members that are sent as `null`).
pub(crate) fn text_enum_or_null<'a>(values: impl IntoIterator<Item = &'a str>) -> Object {
    let values = values
        .into_iter()
        .map(serde_json::Value::from)
        .chain([serde_json::Value::Null]);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(values))
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    #[test]
    fn the_committed_document_matches_the_code() {
        let committed = include_str!("../../../../docs/openapi.json");
        assert!(
            committed.trim_end() == super::document().trim_end(),
            "docs/openapi.json is out of date: run `just openapi` (it regenerates the TypeScript client too)"
        );
    }

    fn operations() -> Vec<(String, String, Value)> {
        let doc: Value = serde_json::from_str(super::document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut all = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                all.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
        assert!(all.len() > 25, "every route is documented: {}", all.len());
        all
    }

    /// utoipa keys component schemas by type name: two DTOs with one name
    /// (in different modules) silently share one schema, and one of them is
    /// then documented wrongly. So every schema type's name is unique.
    #[test]
    fn schema_type_names_are_unique_across_modules() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![dir.join("problem.rs")];
        for entry in std::fs::read_dir(dir.join("routes")).unwrap() {
            files.push(entry.unwrap().path());
        }
        let mut seen = std::collections::BTreeMap::new();
        for file in files {
            let source = std::fs::read_to_string(&file).unwrap();
            let mut derives_schema = false;
            for line in source.lines().map(str::trim) {
                if line.starts_with("#[derive(") {
                    derives_schema = line.contains("ToSchema");
                    continue;
                }
                if line.starts_with("#[") || line.starts_with("///") {
                    continue;
                }
                if derives_schema {
                    let name = line
                        .split(['{', '<', '(', ' '])
                        .skip_while(|w| !matches!(*w, "struct" | "enum"))
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    if let Some(other) = seen.insert(name.clone(), file.clone()) {
                        panic!(
                            "schema {name} is declared in {} and {}",
                            other.display(),
                            file.display()
                        );
                    }
                }
                derives_schema = false;
            }
        }
        assert!(
            seen.contains_key("TradingConfigResponse") && seen.contains_key("Problem"),
            "{seen:?}"
        );
    }

    #[test]
    fn operation_ids_are_unique_and_every_operation_has_a_summary() {
        let mut ids = BTreeSet::new();
        for (method, path, op) in operations() {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            assert!(!id.is_empty(), "{method} {path} has an operationId");
            assert!(
                ids.insert(id.clone()),
                "operationId {id} of {method} {path} is used twice"
            );
            let summary = op["summary"].as_str().unwrap_or_default();
            assert!(!summary.is_empty(), "{method} {path} has a summary");
        }
    }

    #[test]
    fn every_operation_documents_problems_and_security() {
        for (method, path, op) in operations() {
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.contains_key("4XX") && responses.contains_key("5XX"),
                "{method} {path} documents its problems"
            );
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} declares its security"));
            let public = path == "/"
                || path == "/api/openapi.json"
                || path.starts_with("/.well-known/")
                || ["/healthz", "/readyz"].contains(&path.as_str())
                || [
                    "/api/v1/auth/register",
                    "/api/v1/auth/login",
                    "/api/v1/auth/refresh",
                ]
                .contains(&path.as_str());
            let expected: Vec<Value> = if public {
                vec![]
            } else if path == "/metrics" {
                // A bearer token (development leaves it open; see its description).
                vec![serde_json::json!({"metrics_token": []})]
            } else if path.starts_with("/api/v1/device/") {
                vec![serde_json::json!({
                    "device_id": [], "device_timestamp": [], "device_nonce": [], "device_signature": []
                })]
            } else if path.starts_with("/api/v1/auth/")
                || path.starts_with("/api/v1/api-keys")
                || path.starts_with("/api/v1/admin/")
                || path == "/api/v1/audit"
            {
                // A password session only: API keys can never do these.
                vec![serde_json::json!({"bearer": []})]
            } else {
                // An owner route: a session, or an API key with one scope.
                let scope = security
                    .get(1)
                    .and_then(|s| s["api_key"][0].as_str())
                    .unwrap_or_else(|| panic!("{method} {path} names the scope an API key needs"));
                assert!(
                    eagate_domain::access::Scope::ALL
                        .iter()
                        .any(|s| s.as_str() == scope),
                    "{method} {path}: {scope}"
                );
                vec![
                    serde_json::json!({"bearer": []}),
                    serde_json::json!({"api_key": [scope]}),
                ]
            };
            assert_eq!(security, &expected, "{method} {path}");
        }
    }
}
