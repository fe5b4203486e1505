use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn register_returns_the_user_and_never_the_hash() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/auth/register",
            &json!({"email": "Alice@Example.COM", "username": "Alice_1", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["location"], "/api/v1/auth/me");
    let user: Value = response.json().await.unwrap();
    let mut keys: Vec<&str> = user.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "email", "id", "updated_at", "username"]);
    assert_eq!(user["email"], "alice@example.com");
    assert_eq!(user["username"], "Alice_1");
    assert!(!user.to_string().contains("argon2"));
}

#[tokio::test]
async fn duplicates_conflict() {
    let app = spawn_app().await;
    app.register("bob").await;
    let same_email = app
        .post_json(
            "/auth/register",
            &json!({"email": "BOB@example.com", "username": "bobby", "password": PASSWORD}),
        )
        .await;
    assert_problem(same_email, StatusCode::CONFLICT, "email-taken").await;
    let same_name = app
        .post_json(
            "/auth/register",
            &json!({"email": "other@example.com", "username": "BOB", "password": PASSWORD}),
        )
        .await;
    assert_problem(same_name, StatusCode::CONFLICT, "username-taken").await;
}

#[tokio::test]
async fn login_by_username_or_email_and_read_me() {
    let app = spawn_app().await;
    let user = app.register("carol").await;
    for login in ["carol", "CAROL", "Carol@Example.com"] {
        let tokens = app.login(login, PASSWORD).await;
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 900);
        let me = app
            .get_auth("/auth/me", tokens["access_token"].as_str().unwrap())
            .await;
        assert_eq!(me.status(), StatusCode::OK);
        assert_eq!(me.headers()["cache-control"], "no-store");
        assert_eq!(me.json::<Value>().await.unwrap(), user);
    }
}

#[tokio::test]
async fn token_responses_are_not_cacheable() {
    let app = spawn_app().await;
    app.register("dave").await;
    let response = app
        .post_json("/auth/login", &json!({"login": "dave", "password": PASSWORD}))
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn access_token_lifetime_is_configurable() {
    let app = spawn_app_with(&[("EAGATE_ACCESS_TOKEN_TTL_SECONDS", "60")]).await;
    app.register("erin").await;
    assert_eq!(app.login("erin", PASSWORD).await["expires_in"], 60);
}

#[tokio::test]
async fn refresh_rotates_the_pair() {
    let app = spawn_app().await;
    let (_, refresh) = app.user_with_tokens("frank").await;
    let response = app
        .post_json("/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.unwrap();
    assert_ne!(pair["refresh_token"], refresh.as_str());
    let me = app
        .get_auth("/auth/me", pair["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    // The new refresh token works once more.
    let again = app
        .post_json("/auth/refresh", &json!({"refresh_token": pair["refresh_token"]}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let (access, refresh) = app.user_with_tokens("grace").await;
    let other = app.login("grace", PASSWORD).await;
    let response = app.post_json_auth("/auth/logout", &access, &json!({})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get_auth("/auth/me", &access).await,
        StatusCode::UNAUTHORIZED,
        "invalid-token",
    )
    .await;
    let refreshed = app
        .post_json("/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_problem(refreshed, StatusCode::UNAUTHORIZED, "invalid-refresh-token").await;
    // Another session of the same user is untouched.
    let me = app
        .get_auth("/auth/me", other["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test]
async fn change_password_then_log_in_with_the_new_one() {
    let app = spawn_app().await;
    let (access, _) = app.user_with_tokens("heidi").await;
    let wrong = app
        .post_json_auth(
            "/auth/password",
            &access,
            &json!({"current_password": "not my password", "new_password": "a whole new password"}),
        )
        .await;
    assert_problem(wrong, StatusCode::FORBIDDEN, "wrong-password").await;
    let response = app
        .post_json_auth(
            "/auth/password",
            &access,
            &json!({"current_password": PASSWORD, "new_password": "a whole new password"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let old = app
        .post_json("/auth/login", &json!({"login": "heidi", "password": PASSWORD}))
        .await;
    assert_problem(old, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
    app.login("heidi", "a whole new password").await;
}

#[tokio::test]
async fn delete_account_removes_it_and_everything_it_owns() {
    let app = spawn_app().await;
    let (access, refresh) = app.user_with_tokens("ivan").await;
    let keep = app.user_with_tokens("judy").await;

    let wrong = app.delete_account(&access, "not my password").await;
    assert_problem(wrong, StatusCode::FORBIDDEN, "wrong-password").await;

    let response = app.delete_account(&access, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_problem(
        app.get_auth("/auth/me", &access).await,
        StatusCode::UNAUTHORIZED,
        "invalid-token",
    )
    .await;
    let refreshed = app
        .post_json("/auth/refresh", &json!({"refresh_token": refresh}))
        .await;
    assert_problem(refreshed, StatusCode::UNAUTHORIZED, "invalid-refresh-token").await;
    let login = app
        .post_json("/auth/login", &json!({"login": "ivan", "password": PASSWORD}))
        .await;
    assert_problem(login, StatusCode::UNAUTHORIZED, "invalid-credentials").await;

    // The cascade took the sessions and refresh tokens; judy's remain.
    let users = app.count("SELECT count(*) AS n FROM users").await;
    let sessions = app.count("SELECT count(*) AS n FROM sessions").await;
    let tokens = app.count("SELECT count(*) AS n FROM refresh_tokens").await;
    assert_eq!((users, sessions, tokens), (1, 1, 1));
    assert_eq!(app.get_auth("/auth/me", &keep.0).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn jwks_publishes_the_signing_key() {
    let app = spawn_app().await;
    let (access, _) = app.user_with_tokens("ken").await;
    let jwks: Value = app
        .client
        .get(format!("{}/.well-known/jwks.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["x"], app.keys.public_key_x());
    let header = jsonwebtoken::decode_header(&access).unwrap();
    assert_eq!(header.kid.as_deref(), key["kid"].as_str());
    // A third party verifies the token with nothing but the JWK.
    let decoding = jsonwebtoken::DecodingKey::from_ed_components(key["x"].as_str().unwrap()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["eagate-api"]);
    validation.set_issuer(&["eagate"]);
    jsonwebtoken::decode::<Value>(&access, &decoding, &validation).unwrap();
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/nope")).send().await.unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "not-found").await;
    let response = app
        .client
        .get(format!("{}/elsewhere", app.base))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "not-found").await;
    let response = app.client.get(app.url("/auth/login")).send().await.unwrap();
    assert_problem(response, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed").await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_created() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/auth/me"))
        .header("x-request-id", "lb-1234.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "lb-1234.abc");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["instance"], "urn:eagate:request:lb-1234.abc");
    let response = app
        .client
        .get(app.url("/auth/me"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn the_openapi_document_and_docs_page_are_served() {
    let app = spawn_app().await;
    let served = app
        .client
        .get(format!("{}/api/openapi.json", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    let served: Value = served.json().await.unwrap();
    let committed: Value = serde_json::from_str(include_str!("../../../../docs/openapi.json")).unwrap();
    assert_eq!(served, committed);
    assert_eq!(served["openapi"], "3.1.0");
    let page = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("swagger-ui"),
        "an interactive page, served from the binary"
    );
    assert!(!html.contains("cdn") && !html.contains("unpkg"), "no CDN");
}
