//! Every malformed input answers with a 4xx problem and changes nothing.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

fn registration(email: &str, username: &str, password: &str) -> Value {
    json!({"email": email, "username": username, "password": password})
}

#[tokio::test]
async fn registration_fields_are_validated() {
    let app = spawn_app().await;
    let long_email = format!("{}@example.com", "a".repeat(250));
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            registration("not-an-email", "valid_name", PASSWORD),
            "email",
            "invalid",
        ),
        (registration("", "valid_name", PASSWORD), "email", "required"),
        (registration("a@b", "valid_name", PASSWORD), "email", "invalid"),
        (
            registration(" a@example.com", "valid_name", PASSWORD),
            "email",
            "invalid",
        ),
        (
            registration(&long_email, "valid_name", PASSWORD),
            "email",
            "too_long",
        ),
        (
            registration("a@example.com", "ab", PASSWORD),
            "username",
            "too_short",
        ),
        (
            registration("a@example.com", &"a".repeat(33), PASSWORD),
            "username",
            "too_long",
        ),
        (
            registration("a@example.com", "bad name", PASSWORD),
            "username",
            "invalid_characters",
        ),
        (
            registration("a@example.com", "名前です", PASSWORD),
            "username",
            "invalid_characters",
        ),
        (
            registration("a@example.com", "x'; DROP TABLE users;--", PASSWORD),
            "username",
            "invalid_characters",
        ),
        (
            registration("a@example.com", "nul\u{0}name", PASSWORD),
            "username",
            "invalid_characters",
        ),
        (
            registration("a@example.com", "valid_name", "short"),
            "password",
            "too_short",
        ),
        (
            registration("a@example.com", "valid_name", &"p".repeat(129)),
            "password",
            "too_long",
        ),
        // OWASP ASVS 5.0 V6.2.4: common passwords (and padded ones) are refused.
        (
            registration("a@example.com", "valid_name", "password1234"),
            "password",
            "too_common",
        ),
        (
            registration("a@example.com", "valid_name", "qwertyuiop!!"),
            "password",
            "too_common",
        ),
        // A password may not contain the account's own names.
        (
            registration("a@example.com", "valid_name", "my valid_name password"),
            "password",
            "too_common",
        ),
    ];
    for (body, field, code) in cases {
        let response = app.post_json("/auth/register", &body).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
        assert_eq!(error_fields(&problem), [field], "{body}");
        assert_eq!(problem["errors"][0]["code"], code, "{body}");
    }
    // Every failing field is listed at once.
    let problem = assert_problem(
        app.post_json("/auth/register", &registration("x", "y", "z"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["email", "username", "password"]);
    // Unicode passwords count characters, not bytes: 12 emoji are enough.
    let ok = app
        .post_json(
            "/auth/register",
            &registration("u@example.com", "unicode", "🔑🚀🌍🎯📈💡🔒🧭⚡🎲🌊🍀"),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    // Nothing invalid was stored: only the one valid account exists.
    let login = app
        .post_json(
            "/auth/login",
            &json!({"login": "valid_name", "password": PASSWORD}),
        )
        .await;
    assert_problem(login, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
}

#[tokio::test]
async fn json_shape_errors_name_the_field() {
    let app = spawn_app().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"username": "valid_name", "password": PASSWORD}), "(body)"),
        (
            json!({"email": 5, "username": "valid_name", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "a@example.com", "username": null, "password": PASSWORD}),
            "username",
        ),
        (
            json!({"email": "a@example.com", "username": "valid_name", "password": ["x"]}),
            "password",
        ),
        (
            json!({"email": "a@example.com", "username": "valid_name", "password": PASSWORD, "admin": true}),
            "admin",
        ),
        (json!([1, 2, 3]), "(body)"),
        (json!(["a@example.com", "valid_name", PASSWORD]), "(body)"),
        (json!("a string"), "(body)"),
        (json!(null), "(body)"),
    ];
    for (body, field) in cases {
        let response = app.post_json("/auth/register", &body).await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "malformed-body").await;
        assert_eq!(error_fields(&problem), [field], "{body} -> {problem}");
    }
    let extra = app
        .post_json(
            "/auth/register",
            &json!({"email": "a@example.com", "username": "valid_name", "password": PASSWORD, "admin": true}),
        )
        .await;
    let problem: Value = extra.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("unknown field `admin`"),
        "{problem}"
    );
}

async fn raw_post(app: &TestApp, path: &str, content_type: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn non_json_bodies_are_refused() {
    let app = spawn_app().await;
    for path in ["/auth/register", "/auth/login", "/auth/refresh"] {
        for (content_type, body) in [
            (Some("application/json"), b"{not json".to_vec()),
            (Some("application/json"), b"".to_vec()),
            (Some("application/json"), b"{\"login\":\"a\"} trailing".to_vec()),
            (Some("application/json"), vec![0xff, 0xfe, 0x00]),
        ] {
            let response = raw_post(&app, path, content_type, body).await;
            assert_problem(response, StatusCode::BAD_REQUEST, "malformed-body").await;
        }
        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let response = raw_post(&app, path, content_type, b"{}".to_vec()).await;
            assert_problem(
                response,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
            )
            .await;
        }
    }
    // A charset parameter and +json types are fine.
    let response = raw_post(
        &app,
        "/auth/login",
        Some("application/json; charset=utf-8"),
        br#"{"login":"nobody","password":"whatever it is"}"#.to_vec(),
    )
    .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
}

#[tokio::test]
async fn oversized_and_compressed_bodies_are_refused() {
    let app = spawn_app().await;
    let huge = json!({"email": "a@example.com", "username": "valid_name", "password": "p".repeat(17 * 1024)});
    let response = app.post_json("/auth/register", &huge).await;
    let problem = assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
    assert!(problem["detail"].as_str().unwrap().contains("16384"));
    // Without Content-Length (chunked), the limit still holds.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..40).map(|_| Ok(vec![b' '; 1024])).collect();
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large").await;
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b, 0x08, 0x00])
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
}

#[tokio::test]
async fn login_refresh_password_and_delete_validate_their_fields() {
    let app = spawn_app().await;
    let (access, _) = app.user_with_tokens("olivia").await;

    let problem = assert_problem(
        app.post_json("/auth/login", &json!({"login": "", "password": ""}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["login", "password"]);
    let problem = assert_problem(
        app.post_json("/auth/login", &json!({"login": "x".repeat(300), "password": "p"}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["login"]);
    assert_problem(
        app.post_json("/auth/login", &json!({"login": "olivia"})).await,
        StatusCode::BAD_REQUEST,
        "malformed-body",
    )
    .await;

    for body in [
        json!({}),
        json!({"refresh_token": 1}),
        json!({"refresh_token": "x", "extra": 1}),
    ] {
        assert_problem(
            app.post_json("/auth/refresh", &body).await,
            StatusCode::BAD_REQUEST,
            "malformed-body",
        )
        .await;
    }
    for token in ["", "eagr_not-a-real-token", &"x".repeat(5000)] {
        assert_problem(
            app.post_json("/auth/refresh", &json!({"refresh_token": token}))
                .await,
            StatusCode::UNAUTHORIZED,
            "invalid-refresh-token",
        )
        .await;
    }

    let problem = assert_problem(
        app.post_json_auth(
            "/auth/password",
            &access,
            &json!({"current_password": "", "new_password": "short"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["current_password", "new_password"]);
    assert_problem(
        app.post_json_auth(
            "/auth/password",
            &access,
            &json!({"new_password": "long enough password"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "malformed-body",
    )
    .await;

    let response = app
        .client
        .delete(app.url("/auth/me"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    )
    .await;
    let response = app.delete_account(&access, "").await;
    let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
    assert_eq!(error_fields(&problem), ["password"]);

    // After all that, the account is intact.
    assert_eq!(app.get_auth("/auth/me", &access).await.status(), StatusCode::OK);
}
