//! `/api/v1/admin` and the administrator role: every admin route refuses
//! owners and API keys; an administrator on owner routes acts on their own
//! account only.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Grants the role as `eagate admin grant` does (that command is tested in
/// tests/binary.rs).
async fn make_admin(app: &TestApp, username: &str) {
    app.execute(&format!(
        "INSERT INTO account_roles (user_id, role, granted_at) \
         SELECT id, 'admin', now() FROM users WHERE username = '{username}'"
    ))
    .await;
}

/// Every documented `/api/v1/admin` operation, from the OpenAPI document
/// (so a new admin route is covered without touching this test).
async fn admin_operations(app: &TestApp) -> Vec<(String, String)> {
    let doc: Value = app
        .client
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if let Some(path) = path.strip_prefix("/api/v1") {
            if path.starts_with("/admin/") {
                for method in item.as_object().unwrap().keys() {
                    let concrete = path.replace("{id}", "0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b");
                    operations.push((method.to_uppercase(), concrete));
                }
            }
        }
    }
    assert!(!operations.is_empty(), "admin operations are documented");
    operations
}

async fn call(app: &TestApp, method: &str, path: &str, token: &str) -> reqwest::Response {
    app.client
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_admin_route_refuses_owners_and_api_keys() {
    let app = spawn_app().await;
    let (owner, _) = app.user_with_tokens("plainowner").await;
    let (admin, _) = app.user_with_tokens("keyedadmin").await;
    make_admin(&app, "keyedadmin").await;
    let scopes = json!([
        "signals:publish",
        "signals:read",
        "devices:read",
        "devices:write",
        "config:read",
        "config:write",
        "bundles:write",
        "deployments:write"
    ]);
    let created = app
        .post_json_auth("/api-keys", &admin, &json!({"name": "all", "scopes": scopes}))
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let admins_key = created.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    for (method, path) in admin_operations(&app).await {
        assert_problem(
            call(&app, &method, &path, &owner).await,
            StatusCode::FORBIDDEN,
            "admin-required",
        )
        .await;
        assert_problem(
            call(&app, &method, &path, &admins_key).await,
            StatusCode::FORBIDDEN,
            "admin-required",
        )
        .await;
        assert_problem(
            app.client
                .request(method.parse().unwrap(), app.url(&path))
                .send()
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid-token",
        )
        .await;
        let as_admin = call(&app, &method, &path, &admin).await;
        assert!(
            as_admin.status().is_success(),
            "{method} {path}: {}",
            as_admin.status()
        );
    }
}

#[tokio::test]
async fn an_administrator_reads_fleet_counts_and_no_secret() {
    let app = spawn_app().await;
    let (admin, _) = app.user_with_tokens("statsadmin").await;
    make_admin(&app, "statsadmin").await;
    let (owner, _) = app.user_with_tokens("statsowner").await;
    let (kept, _) = app.create_device(&owner, "Kept").await;
    let (gone, _) = app.create_device(&owner, "Gone").await;
    let revoked = app
        .post_auth(
            &format!("/devices/{}/revoke", gone["id"].as_str().unwrap()),
            &owner,
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    for _ in 0..2 {
        let published = app
            .post_json_auth(
                "/signals",
                &owner,
                &json!({"instrument": "EURUSD", "side": "buy", "order_type": "market", "volume": 0.1,
                        "device_ids": [kept["id"]]}),
            )
            .await;
        assert_eq!(published.status(), StatusCode::CREATED);
    }
    let response = app.get_auth("/admin/stats", &admin).await;
    assert_eq!(response.status(), StatusCode::OK);
    let stats: Value = response.json().await.unwrap();
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(
        stats,
        json!({"accounts": 2, "admins": 1, "devices_active": 1, "devices_revoked": 1,
               "signals_per_day": [{"day": today, "signals": 2}]})
    );
}

#[tokio::test]
async fn an_administrator_on_owner_routes_acts_on_their_own_account() {
    let app = spawn_app().await;
    let (admin, _) = app.user_with_tokens("scopedadmin").await;
    make_admin(&app, "scopedadmin").await;
    let (owner, _) = app.user_with_tokens("otherowner").await;
    let (device, _) = app.create_device(&owner, "Owner VPS").await;
    let id = device["id"].as_str().unwrap();
    let listed: Value = app.get_auth("/devices", &admin).await.json().await.unwrap();
    assert_eq!(
        listed["items"],
        json!([]),
        "the admin sees their own devices only"
    );
    assert_problem(
        app.get_auth(&format!("/devices/{id}"), &admin).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    assert_problem(
        app.post_auth(&format!("/devices/{id}/revoke"), &admin).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    let audit = app.audit(&admin).await;
    assert!(
        audit.iter().all(|e| e["action"] != "device.registered"),
        "the owner's events are not the admin's: {audit:?}"
    );
    let still: Value = app
        .get_auth(&format!("/devices/{id}"), &owner)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(still["status"], "active");
}
