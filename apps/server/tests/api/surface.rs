//! The HTTP surface as a newcomer meets it: the root, `/docs`, methods a
//! path does not answer, and the OpenAPI document agreeing with the server
//! about paths, methods and query parameters.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::{TestApp, assert_problem, error_fields, spawn_app};

async fn served_document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_root_points_to_the_docs_the_document_and_health() {
    let app = spawn_app().await;
    let response = app.client.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let index: Value = response.json().await.unwrap();
    assert_eq!(index["name"], "eagate");
    assert_eq!(index["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(index["docs"], "/docs/");
    assert_eq!(index["openapi"], "/api/openapi.json");
    assert_eq!(index["health"], "/healthz");
    assert_eq!(index["ready"], "/readyz");
    assert_eq!(index["api"], "/api/v1");

    // Every link works.
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();
    let docs = get(index["docs"].as_str().unwrap()).await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger-ui"));
    let document: Value = get(index["openapi"].as_str().unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    for health in ["health", "ready"] {
        let response = get(index[health].as_str().unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{health}");
    }
}

#[tokio::test]
async fn docs_without_the_slash_redirects_to_the_docs_page() {
    let app = spawn_app().await;
    let response = app.client.get(format!("{}/docs", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(response.headers()["location"], "/docs/");
    let page = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

/// `/api/v1/devices/{id}` → `/api/v1/devices/<a uuid>`.
fn concrete(path: &str) -> String {
    path.replace("{id}", "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b")
}

fn allow_set(response: &reqwest::Response) -> BTreeSet<String> {
    response
        .headers()
        .get("allow")
        .expect("405 carries Allow")
        .to_str()
        .unwrap()
        .split(',')
        .map(|m| m.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn every_documented_path_answers_other_methods_with_405_and_its_methods() {
    let app = spawn_app().await;
    let document = served_document(&app).await;
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() > 20, "{}", paths.len());
    for (path, item) in paths {
        let documented: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if documented.contains(method) {
                continue;
            }
            let response = app
                .client
                .request(
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    format!("{}{}", app.base, concrete(path)),
                )
                .send()
                .await
                .unwrap();
            assert_eq!(allow_set(&response), documented, "{method} {path}");
            assert_problem(response, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;
        }
    }
    // The docs page is not an API operation, yet answers the same way.
    let response = app
        .client
        .delete(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(allow_set(&response), BTreeSet::from(["GET".to_owned()]));
    assert_problem(response, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;
    // A path that does not exist is a 404 whatever the method.
    for path in ["/nope", "/api/v1/nope", "/api/v1/devices/x/y"] {
        let response = app
            .client
            .delete(format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::NOT_FOUND, "not-found").await;
    }
}

/// For every owner `GET` with query parameters, the server accepts exactly
/// what the document declares: integers within their bounds, enum members;
/// anything else is a 422 problem that names the parameter, and an
/// undeclared parameter is a 400.
#[tokio::test]
async fn query_parameters_are_accepted_and_refused_as_documented() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("quentin").await;
    // An administrator, so the admin listings are checked too.
    app.execute("INSERT INTO account_roles (user_id, role, granted_at) SELECT id, 'admin', now() FROM users")
        .await;
    let document = served_document(&app).await;
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        let Some(op) = item.get("get") else { continue };
        if op["security"][0] != serde_json::json!({"bearer": []}) || path.contains('{') {
            continue;
        }
        let Some(params) = op["parameters"].as_array() else {
            continue;
        };
        let url = |query: &str| format!("{}{path}?{query}", app.base);
        for param in params.iter().filter(|p| p["in"] == "query") {
            let name = param["name"].as_str().unwrap();
            let schema = &param["schema"];
            let (good, bad): (Vec<String>, Vec<String>) = if schema["type"] == "integer" {
                let min = schema["minimum"].as_i64().expect("bounded");
                let max = schema["maximum"].as_i64().expect("bounded");
                (
                    vec![min.to_string(), max.to_string()],
                    vec![
                        (min - 1).to_string(),
                        (max + 1).to_string(),
                        "abc".into(),
                        "1.5".into(),
                    ],
                )
            } else if let Some(values) = schema["enum"].as_array() {
                (
                    values.iter().map(|v| v.as_str().unwrap().to_owned()).collect(),
                    vec!["nope".into(), String::new()],
                )
            } else {
                continue;
            };
            for value in good {
                let response = app
                    .client
                    .get(url(&format!("{name}={value}")))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{path}?{name}={value}");
            }
            for value in bad {
                let response = app
                    .client
                    .get(url(&format!("{name}={value}")))
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                let problem =
                    assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
                assert_eq!(error_fields(&problem), [name], "{path}?{name}={value}: {problem}");
                assert!(
                    problem["detail"].as_str().unwrap().contains(name),
                    "the detail names {name}: {problem}"
                );
            }
            checked += 1;
        }
        let response = app
            .client
            .get(url("bogus=1"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "malformed-query").await;
        assert!(problem["detail"].as_str().unwrap().contains("bogus"), "{problem}");
    }
    // limit on /devices, /signals, /audit, /api-keys, /config/history,
    // /bundles, /deployments, /admin/accounts and /admin/audit, and status
    // on /devices.
    assert_eq!(checked, 10, "the bounded and enumerated parameters were found");
}
