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
async fn admin_operations(app: &TestApp, target: &str) -> Vec<(String, String)> {
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
        if let Some(path) = path.strip_prefix("/api/v1")
            && path.starts_with("/admin/")
        {
            for method in item.as_object().unwrap().keys() {
                let concrete = path.replace("{id}", target);
                operations.push((method.to_uppercase(), concrete));
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
    let target = app.register("targetowner").await;
    let target = target["id"].as_str().unwrap().to_owned();
    for (method, path) in admin_operations(&app, &target).await {
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

#[tokio::test]
async fn an_administrator_lists_and_searches_accounts_without_secrets() {
    let app = spawn_app().await;
    let (admin, _) = app.user_with_tokens("listadmin").await;
    make_admin(&app, "listadmin").await;
    for name in ["alpha_trader", "beta_trader", "gamma_other"] {
        app.register(name).await;
    }
    let all: Value = app
        .get_auth("/admin/accounts", &admin)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["gamma_other", "beta_trader", "alpha_trader", "listadmin"],
        "newest first"
    );
    assert_eq!(all["items"][3]["role"], "admin");
    assert_eq!(all["items"][0]["role"], "owner");
    let keys: Vec<&String> = all["items"][0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["created_at", "disabled_at", "email", "id", "role", "username"],
        "no hash, no secret"
    );
    let page: Value = app
        .get_auth("/admin/accounts?q=TRADER&limit=1", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"][0]["username"], "beta_trader");
    let cursor = page["next_cursor"].as_str().unwrap();
    let next: Value = app
        .get_auth(
            &format!("/admin/accounts?q=TRADER&limit=1&cursor={cursor}"),
            &admin,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["items"][0]["username"], "alpha_trader");
    assert!(next["next_cursor"].is_null());
    let by_email: Value = app
        .get_auth("/admin/accounts?q=gamma_other%40example", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_email["items"].as_array().unwrap().len(), 1);
    for (query, field) in [
        (format!("q={}", "x".repeat(65)), "q"),
        ("q=%20".to_owned(), "q"),
        ("limit=0".to_owned(), "limit"),
        ("cursor=nope".to_owned(), "cursor"),
    ] {
        let problem = assert_problem(
            app.get_auth(&format!("/admin/accounts?{query}"), &admin).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert_eq!(error_fields(&problem), [field], "{query}");
    }
    assert_problem(
        app.get_auth("/admin/accounts?role=admin", &admin).await,
        StatusCode::BAD_REQUEST,
        "malformed-query",
    )
    .await;
}

#[tokio::test]
async fn an_administrator_reads_the_global_audit_log_with_filters() {
    let app = spawn_app().await;
    let (admin, _) = app.user_with_tokens("auditadmin").await;
    make_admin(&app, "auditadmin").await;
    let (owner, _) = app.user_with_tokens("auditedowner").await;
    let (device, _) = app.create_device(&owner, "Audited VPS").await;
    let failed = app
        .post_json(
            "/auth/login",
            &json!({"login": "auditedowner", "password": "not the password at all"}),
        )
        .await;
    assert_eq!(failed.status(), StatusCode::UNAUTHORIZED);
    let me: Value = app.get_auth("/auth/me", &owner).await.json().await.unwrap();
    let owner_id = me["id"].as_str().unwrap();
    let actions = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap().to_owned())
            .collect()
    };
    let get = |query: String| {
        let app = &app;
        let admin = &admin;
        async move {
            let response = app.get_auth(&format!("/admin/audit?{query}"), admin).await;
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            response.json::<Value>().await.unwrap()
        }
    };
    let everyone = get(String::new()).await;
    assert!(
        actions(&everyone)
            .iter()
            .filter(|a| *a == "account.registered")
            .count()
            == 2,
        "{everyone}"
    );
    assert_eq!(
        actions(&get(format!("actor={owner_id}")).await),
        [
            "login.failed",
            "device.registered",
            "login.succeeded",
            "account.registered"
        ]
    );
    assert_eq!(
        actions(&get("action=login.failed".to_owned()).await),
        ["login.failed"]
    );
    assert_eq!(
        actions(&get(format!("device={}", device["id"].as_str().unwrap())).await),
        ["device.registered"]
    );
    assert!(actions(&get("from=2999-01-01T00:00:00Z".to_owned()).await).is_empty());
    assert!(actions(&get("to=2001-01-01T00:00:00Z".to_owned()).await).is_empty());
    let recent = get(format!(
        "actor={owner_id}&from=2001-01-01T00:00:00Z&to=2999-01-01T00:00:00Z&limit=2"
    ))
    .await;
    assert_eq!(actions(&recent).len(), 2);
    let cursor = recent["next_cursor"].as_str().unwrap();
    let rest = get(format!("actor={owner_id}&limit=2&cursor={cursor}")).await;
    assert_eq!(actions(&rest), ["login.succeeded", "account.registered"]);
    for (query, field) in [
        ("actor=nobody", "actor"),
        ("action=login.maybe", "action"),
        ("device=42", "device"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
        ("limit=101", "limit"),
        ("cursor=zz", "cursor"),
    ] {
        let problem = assert_problem(
            app.get_auth(&format!("/admin/audit?{query}"), &admin).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert_eq!(error_fields(&problem), [field], "{query}");
    }
    assert_problem(
        app.get_auth("/admin/audit?user=x", &admin).await,
        StatusCode::BAD_REQUEST,
        "malformed-query",
    )
    .await;
}
