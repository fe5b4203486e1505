//! Attacks on authentication, each expected to fail.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use eagate_crypto::{Ed25519Keys, JwtAccessTokens, JwtConfig};
use eagate_domain::account::{AccessClaims, AccessTokenIssuer as _, SessionId, UserId};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

fn config(issuer: &str, audience: &str) -> JwtConfig {
    JwtConfig {
        issuer: issuer.into(),
        audience: audience.into(),
    }
}

/// The (user, session) a real access token names.
fn claims_of(token: &str) -> (Uuid, Uuid) {
    let payload = token.split('.').nth(1).unwrap();
    let json: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    (
        json["sub"].as_str().unwrap().parse().unwrap(),
        json["sid"].as_str().unwrap().parse().unwrap(),
    )
}

fn forge(
    keys: &Ed25519Keys,
    config: JwtConfig,
    user: Uuid,
    session: Uuid,
    issued_ago: Duration,
    ttl: Duration,
) -> String {
    let issued_at = Utc::now() - issued_ago;
    JwtAccessTokens::new(keys, config)
        .issue(&AccessClaims {
            user_id: UserId::from_uuid(user),
            session_id: SessionId::from_uuid(session),
            issued_at,
            expires_at: issued_at + ttl,
        })
        .unwrap()
        .expose()
        .to_owned()
}

async fn assert_rejected(app: &TestApp, token: &str) {
    assert_problem(
        app.get_auth("/auth/me", token).await,
        StatusCode::UNAUTHORIZED,
        "invalid-token",
    )
    .await;
}

#[tokio::test]
async fn forged_access_tokens_are_rejected() {
    let app = spawn_app().await;
    let (access, _) = app.user_with_tokens("mallory").await;
    let (user, session) = claims_of(&access);
    let ours = config("eagate", "eagate-api");
    let fifteen = Duration::minutes(15);

    // Sanity: a token forged with the real key and real claims is accepted,
    // so each rejection below is due to the one thing that differs.
    let genuine = forge(&app.keys, ours.clone(), user, session, Duration::zero(), fifteen);
    assert_eq!(app.get_auth("/auth/me", &genuine).await.status(), StatusCode::OK);

    // alg "none".
    let (header, payload) = {
        let mut parts = access.split('.');
        (parts.next().unwrap().to_owned(), parts.next().unwrap().to_owned())
    };
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    assert_rejected(&app, &format!("{none_header}.{payload}.")).await;
    // Signed by another key.
    let stranger = Ed25519Keys::generate().unwrap();
    assert_rejected(
        &app,
        &forge(&stranger, ours.clone(), user, session, Duration::zero(), fifteen),
    )
    .await;
    // HS256 with the public key as the HMAC secret.
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload).unwrap()).unwrap();
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(app.keys.public_key_x().as_bytes()),
    )
    .unwrap();
    assert_rejected(&app, &hs).await;
    // Expired.
    assert_rejected(
        &app,
        &forge(
            &app.keys,
            ours.clone(),
            user,
            session,
            Duration::minutes(20),
            fifteen,
        ),
    )
    .await;
    // Wrong audience, wrong issuer.
    assert_rejected(
        &app,
        &forge(
            &app.keys,
            config("eagate", "other"),
            user,
            session,
            Duration::zero(),
            fifteen,
        ),
    )
    .await;
    assert_rejected(
        &app,
        &forge(
            &app.keys,
            config("evil", "eagate-api"),
            user,
            session,
            Duration::zero(),
            fifteen,
        ),
    )
    .await;
    // Tampered payload: someone else's user id under the original signature.
    let mut tampered_claims = claims.clone();
    tampered_claims["sub"] = json!(Uuid::now_v7());
    let signature = access.rsplit('.').next().unwrap();
    let tampered = format!(
        "{header}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(tampered_claims.to_string())
    );
    assert_rejected(&app, &tampered).await;
    // Validly signed, but for a session that does not exist.
    assert_rejected(
        &app,
        &forge(
            &app.keys,
            ours.clone(),
            user,
            Uuid::now_v7(),
            Duration::zero(),
            fifteen,
        ),
    )
    .await;
    // Validly signed, real session, other user.
    assert_rejected(
        &app,
        &forge(
            &app.keys,
            ours,
            Uuid::now_v7(),
            session,
            Duration::zero(),
            fifteen,
        ),
    )
    .await;
}

#[tokio::test]
async fn malformed_authorization_headers_are_rejected() {
    let app = spawn_app().await;
    let (access, _) = app.user_with_tokens("trent").await;
    for value in [
        String::new(),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        format!("Basic {access}"),
        format!("Token {access}"),
        "Bearer not.a.jwt".to_owned(),
        format!("Bearer {access}x"),
    ] {
        let response = app
            .client
            .get(app.url("/auth/me"))
            .header("authorization", value.clone())
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, StatusCode::UNAUTHORIZED, "invalid-token").await;
        assert!(!problem.to_string().contains(&access), "{value}");
    }
    // Scheme is case-insensitive.
    let response = app
        .client
        .get(app.url("/auth/me"))
        .header("authorization", format!("bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_token_reuse_revokes_the_whole_family() {
    let app = spawn_app().await;
    let (_, stolen) = app.user_with_tokens("victim").await;
    // The legitimate client rotates.
    let pair: Value = app
        .post_json("/auth/refresh", &json!({"refresh_token": stolen}))
        .await
        .json()
        .await
        .unwrap();
    let live_access = pair["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get_auth("/auth/me", &live_access).await.status(),
        StatusCode::OK
    );
    // The attacker replays the stolen (already rotated) token.
    let replay = app
        .post_json("/auth/refresh", &json!({"refresh_token": stolen}))
        .await;
    assert_problem(replay, StatusCode::UNAUTHORIZED, "invalid-refresh-token").await;
    // The whole family is dead: the legitimate refresh token and access token.
    let legit = app
        .post_json("/auth/refresh", &json!({"refresh_token": pair["refresh_token"]}))
        .await;
    assert_problem(legit, StatusCode::UNAUTHORIZED, "invalid-refresh-token").await;
    assert_rejected(&app, &live_access).await;
    // A fresh login still works: the owner is not locked out.
    app.login("victim", PASSWORD).await;
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_yield_exactly_one_pair() {
    let app = spawn_app().await;
    let (_, refresh) = app.user_with_tokens("racer").await;
    let body = json!({"refresh_token": refresh});
    let requests = (0..10).map(|_| app.post_json("/auth/refresh", &body));
    let responses = futures_util::future::join_all(requests).await;
    let ok = responses.iter().filter(|r| r.status() == StatusCode::OK).count();
    // The first rotation always wins (reuse is only detected after one), so
    // zero winners is as wrong as two.
    assert_eq!(
        ok, 1,
        "exactly one of 10 concurrent refreshes with one token may succeed"
    );
    for response in responses.into_iter().filter(|r| r.status() != StatusCode::OK) {
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid-refresh-token").await;
    }
}

#[tokio::test]
async fn every_token_dies_after_a_password_change() {
    let app = spawn_app().await;
    let (access, refresh) = app.user_with_tokens("walter").await;
    let second = app.login("walter", PASSWORD).await;
    let response = app
        .post_json_auth(
            "/auth/password",
            &access,
            &json!({"current_password": PASSWORD, "new_password": "an entirely new secret"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_rejected(&app, &access).await;
    assert_rejected(&app, second["access_token"].as_str().unwrap()).await;
    for token in [refresh.as_str(), second["refresh_token"].as_str().unwrap()] {
        let r = app
            .post_json("/auth/refresh", &json!({"refresh_token": token}))
            .await;
        assert_problem(r, StatusCode::UNAUTHORIZED, "invalid-refresh-token").await;
    }
}

#[tokio::test]
async fn login_does_not_reveal_whether_an_account_exists() {
    let app = spawn_app().await;
    app.register("existing").await;
    let wrong_password = app
        .post_json(
            "/auth/login",
            &json!({"login": "existing", "password": "not the password"}),
        )
        .await;
    let unknown_user = app
        .post_json(
            "/auth/login",
            &json!({"login": "nobody_here", "password": "not the password"}),
        )
        .await;
    let unknown_email = app
        .post_json(
            "/auth/login",
            &json!({"login": "nobody@example.com", "password": "not the password"}),
        )
        .await;
    let mut bodies = Vec::new();
    for response in [wrong_password, unknown_user, unknown_email] {
        let mut body = assert_problem(response, StatusCode::UNAUTHORIZED, "invalid-credentials").await;
        body.as_object_mut().unwrap().remove("instance");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
}

#[tokio::test]
async fn stored_password_is_an_argon2id_hash() {
    use diesel::QueryableByName;
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        password_hash: String,
    }
    let app = spawn_app().await;
    app.register("hashy").await;
    let mut conn = app.db.connect().await;
    let row: Row = diesel::sql_query("SELECT password_hash FROM users")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert!(
        row.password_hash.starts_with("$argon2id$v=19$"),
        "{}",
        row.password_hash
    );
    assert!(!row.password_hash.contains(PASSWORD));
}
