//! `/api/v1/api-keys` and owner routes called with an API key; the attacks
//! on keys (expired, from a disallowed address, without the scope, revoked,
//! rotated away, the stored hash, a key managing keys or the account).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const SIGNAL: &str = r#"{"instrument":"EURUSD","side":"buy","order_type":"market","volume":0.1}"#;

/// Creates a key as the owner (session token); returns the response body.
async fn create_key(app: &TestApp, token: &str, body: &Value) -> Value {
    let response = app.post_json_auth("/api-keys", token, body).await;
    assert_eq!(response.status(), StatusCode::CREATED, "creating {body}");
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-store",
        "a response with a secret is not cached"
    );
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let key: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap())
    );
    key
}

fn secret(key: &Value) -> String {
    key["key"].as_str().unwrap().to_owned()
}

async fn publish(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/signals"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(SIGNAL)
        .send()
        .await
        .unwrap()
}

/// The `api_key.refused` reasons in the owner's audit trail, oldest first.
async fn refusals(app: &TestApp, token: &str) -> Vec<String> {
    app.audit(token)
        .await
        .iter()
        .filter(|e| e["action"] == "api_key.refused")
        .map(|e| e["details"]["reason"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_owner_creates_lists_rotates_and_revokes_keys() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("keyowner").await;
    let key = create_key(
        &app,
        &token,
        &json!({"name": "CI deploy", "scopes": ["devices:read", "signals:publish", "devices:read"],
                "expires_at": "2030-01-01T00:00:00Z", "allowed_cidrs": ["127.0.0.0/8", "::1"]}),
    )
    .await;
    let first = secret(&key);
    assert!(first.starts_with("eag_live_") && first.len() == 58, "{first}");
    assert_eq!(key["prefix"], first[..15]);
    assert_eq!(key["scopes"], json!(["signals:publish", "devices:read"]));
    assert_eq!(key["allowed_cidrs"], json!(["127.0.0.0/8", "::1/128"]));
    assert_eq!(key["expires_at"], "2030-01-01T00:00:00Z");
    assert!(key["last_used_at"].is_null() && key["revoked_at"].is_null());

    // The key works on what its scopes allow.
    let devices = app.get_auth("/devices", &first).await;
    assert_eq!(devices.status(), StatusCode::OK);

    // Listed without the secret; last use written by the next flush.
    let listed = app
        .eventually("/api-keys", &token, |page| {
            !page["items"][0]["last_used_at"].is_null()
        })
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert!(listed["items"][0].get("key").is_none(), "{listed}");
    assert!(!listed.to_string().contains(&first), "the secret is never listed");
    assert!(listed["next_cursor"].is_null());

    // Rotation: a new secret, the old one stops at once.
    let id = key["id"].as_str().unwrap();
    let rotated = app.post_auth(&format!("/api-keys/{id}/rotate"), &token).await;
    assert_eq!(rotated.status(), StatusCode::OK);
    let rotated: Value = rotated.json().await.unwrap();
    let second = secret(&rotated);
    assert_ne!(second, first);
    assert_eq!(rotated["id"], key["id"]);
    assert_eq!(rotated["prefix"], second[..15]);
    assert!(rotated["rotated_at"].is_string());
    assert_problem(
        app.get_auth("/devices", &first).await,
        StatusCode::UNAUTHORIZED,
        "invalid-token",
    )
    .await;
    assert_eq!(app.get_auth("/devices", &second).await.status(), StatusCode::OK);

    // Revocation: idempotent, the key stops at once.
    let revoke = || async {
        app.client
            .delete(app.url(&format!("/api-keys/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
    };
    let revoked = revoke().await;
    assert_eq!(revoked.status(), StatusCode::OK);
    let revoked: Value = revoked.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string());
    let again: Value = revoke().await.json().await.unwrap();
    assert_eq!(
        again["revoked_at"], revoked["revoked_at"],
        "revoking again changes nothing"
    );
    assert_problem(
        app.get_auth("/devices", &second).await,
        StatusCode::UNAUTHORIZED,
        "api-key-revoked",
    )
    .await;
    assert_problem(
        app.post_auth(&format!("/api-keys/{id}/rotate"), &token).await,
        StatusCode::CONFLICT,
        "api-key-not-active",
    )
    .await;

    let actions: Vec<String> = app
        .audit(&token)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .filter(|a| a.starts_with("api_key."))
        .collect();
    assert_eq!(
        actions,
        [
            "api_key.created",
            "api_key.rotated",
            "api_key.revoked",
            "api_key.refused"
        ],
        "create, rotate and revoke are audited once each, and the revoked key's use"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM api_keys WHERE secret_hash IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn a_key_publishes_a_signal_from_a_script_and_nothing_beyond_its_scopes() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("publisher").await;
    app.create_device(&token, "VPS").await;
    let key = secret(
        &create_key(
            &app,
            &token,
            &json!({"name": "relay", "scopes": ["signals:publish"]}),
        )
        .await,
    );
    let published = publish(&app, &key).await;
    assert_eq!(published.status(), StatusCode::CREATED);
    let signal: Value = published.json().await.unwrap();
    assert_eq!(signal["deliveries"].as_array().unwrap().len(), 1, "{signal}");

    // Everything else an owner may do needs another scope, named in the 403.
    let cases = [
        ("GET", "/signals", "signals:read"),
        ("GET", "/devices", "devices:read"),
        ("POST", "/devices", "devices:write"),
        ("GET", "/config", "config:read"),
    ];
    for (method, path, scope) in cases {
        let request = match method {
            "GET" => app.client.get(app.url(path)),
            _ => app.client.post(app.url(path)).json(&json!({"name": "x"})),
        };
        let response = request.bearer_auth(&key).send().await.unwrap();
        let problem = assert_problem(response, StatusCode::FORBIDDEN, "missing-scope").await;
        assert_eq!(problem["scope"], scope, "{method} {path}");
        assert!(problem["detail"].as_str().unwrap().contains(scope), "{problem}");
    }
    let refused = refusals(&app, &token).await;
    assert_eq!(refused, ["missing_scope"; 4], "every refused use is audited");
    let audit = app.audit(&token).await;
    let last = audit.last().unwrap();
    assert_eq!(last["details"]["scope"], "config:read");
    assert_eq!(last["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn a_key_cannot_manage_keys_change_the_password_or_delete_the_account() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("lockedkey").await;
    let key = secret(
        &create_key(
            &app,
            &token,
            &json!({"name": "everything", "scopes": ["signals:publish", "signals:read", "devices:read",
                    "devices:write", "config:read", "config:write", "bundles:write", "deployments:write"]}),
        )
        .await,
    );
    let forbidden = |response| assert_problem(response, StatusCode::FORBIDDEN, "session-required");
    forbidden(
        app.post_json_auth(
            "/api-keys",
            &key,
            &json!({"name": "child", "scopes": ["signals:read"]}),
        )
        .await,
    )
    .await;
    forbidden(app.get_auth("/api-keys", &key).await).await;
    forbidden(
        app.post_auth("/api-keys/0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b/rotate", &key)
            .await,
    )
    .await;
    forbidden(
        app.client
            .delete(app.url("/api-keys/0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    forbidden(
        app.post_json_auth(
            "/auth/password",
            &key,
            &json!({"current_password": PASSWORD, "new_password": "a brand new passphrase 42"}),
        )
        .await,
    )
    .await;
    forbidden(app.delete_account(&key, PASSWORD).await).await;
    forbidden(app.get_auth("/audit", &key).await).await;
    forbidden(app.get_auth("/auth/me", &key).await).await;
    forbidden(app.post_auth("/auth/logout", &key).await).await;
    assert_eq!(
        app.count("SELECT count(*) AS n FROM api_keys").await,
        1,
        "no key was made"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM users").await,
        1,
        "the account stays"
    );
    assert_eq!(refusals(&app, &token).await, ["session_required"; 9]);
    // The password still works.
    app.login("lockedkey", PASSWORD).await;
}

#[tokio::test]
async fn a_key_past_its_expiry_is_refused_and_audited() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("expiring").await;
    let key = create_key(
        &app,
        &token,
        &json!({"name": "short", "scopes": ["devices:read"], "expires_at": "2030-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(
        app.get_auth("/devices", &secret(&key)).await.status(),
        StatusCode::OK
    );
    app.execute(&format!(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = '{}'",
        key["id"].as_str().unwrap()
    ))
    .await;
    assert_problem(
        app.get_auth("/devices", &secret(&key)).await,
        StatusCode::UNAUTHORIZED,
        "api-key-expired",
    )
    .await;
    assert_eq!(refusals(&app, &token).await, ["expired"]);
}

#[tokio::test]
async fn a_key_from_a_disallowed_address_is_refused_and_audited() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("fenced").await;
    // The test client connects from 127.0.0.1.
    let key = secret(
        &create_key(
            &app,
            &token,
            &json!({"name": "office", "scopes": ["devices:read"], "allowed_cidrs": ["203.0.113.0/24"]}),
        )
        .await,
    );
    let refused = app
        .client
        .get(app.url("/devices"))
        .bearer_auth(&key)
        // Not a trusted proxy: the claim is ignored.
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_problem(refused, StatusCode::FORBIDDEN, "address-not-allowed").await;
    let home = secret(
        &create_key(
            &app,
            &token,
            &json!({"name": "home", "scopes": ["devices:read"], "allowed_cidrs": ["127.0.0.1/32"]}),
        )
        .await,
    );
    assert_eq!(app.get_auth("/devices", &home).await.status(), StatusCode::OK);
    assert_eq!(refusals(&app, &token).await, ["address_not_allowed"]);
}

#[tokio::test]
async fn the_allowlist_uses_the_address_a_trusted_proxy_saw() {
    let app = spawn_app_with(&[("EAGATE_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let (token, _) = app.user_with_tokens("proxied").await;
    let key = secret(
        &create_key(
            &app,
            &token,
            &json!({"name": "office", "scopes": ["devices:read"], "allowed_cidrs": ["203.0.113.0/24"]}),
        )
        .await,
    );
    let from = |address: &'static str| {
        app.client
            .get(app.url("/devices"))
            .bearer_auth(&key)
            .header("x-forwarded-for", address)
            .send()
    };
    assert_eq!(from("203.0.113.9").await.unwrap().status(), StatusCode::OK);
    assert_problem(
        from("198.51.100.1").await.unwrap(),
        StatusCode::FORBIDDEN,
        "address-not-allowed",
    )
    .await;
}

#[tokio::test]
async fn the_stored_hash_and_look_alikes_are_not_keys() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("hashed").await;
    let key = secret(&create_key(&app, &token, &json!({"name": "k", "scopes": ["devices:read"]})).await);
    #[derive(diesel::QueryableByName)]
    struct Hash {
        #[diesel(sql_type = diesel::sql_types::Text)]
        hex: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        b64: String,
    }
    use diesel_async::RunQueryDsl as _;
    let mut conn = app.db.connect().await;
    let hash: Hash = diesel::sql_query(
        "SELECT encode(secret_hash, 'hex') AS hex, \
                translate(rtrim(encode(secret_hash, 'base64'), '='), '+/', '-_') AS b64 FROM api_keys",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!(!hash.hex.contains(&key[9..]), "the key is not stored");
    let mut typo = key.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    for forged in [
        hash.hex.clone(),
        format!("eag_live_{}", hash.hex),
        format!("eag_live_{}", hash.b64),
        format!("eag_live_{}xxxxxx", hash.b64),
        String::from_utf8(typo).unwrap(),
        key[..key.len() - 1].to_owned(),
    ] {
        assert_problem(
            app.get_auth("/devices", &forged).await,
            StatusCode::UNAUTHORIZED,
            "invalid-token",
        )
        .await;
    }
    assert_eq!(app.get_auth("/devices", &key).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn another_owners_key_cannot_be_seen_rotated_or_revoked() {
    let app = spawn_app().await;
    let (alice, _) = app.user_with_tokens("alicekeys").await;
    let (mallory, _) = app.user_with_tokens("mallorykeys").await;
    let key = create_key(&app, &alice, &json!({"name": "mine", "scopes": ["devices:read"]})).await;
    let id = key["id"].as_str().unwrap();
    assert_problem(
        app.post_auth(&format!("/api-keys/{id}/rotate"), &mallory).await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    let revoke = app
        .client
        .delete(app.url(&format!("/api-keys/{id}")))
        .bearer_auth(&mallory)
        .send()
        .await
        .unwrap();
    assert_problem(revoke, StatusCode::NOT_FOUND, "not-found").await;
    let listed: Value = app.get_auth("/api-keys", &mallory).await.json().await.unwrap();
    assert_eq!(listed["items"], json!([]));
    // Alice's key lists Alice's devices only.
    app.create_device(&mallory, "Mallory VPS").await;
    let devices: Value = app
        .get_auth("/devices", &secret(&key))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(devices["items"], json!([]));
    assert_eq!(
        app.get_auth("/devices", &secret(&key)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn creating_a_key_validates_every_field() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("validator").await;
    let invalid = |body: Value| {
        let app = &app;
        let token = &token;
        async move {
            let response = app.post_json_auth("/api-keys", token, &body).await;
            assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await
        }
    };
    let codes = |problem: &Value| -> Vec<(String, String)> {
        problem["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["field"].as_str().unwrap().to_owned(),
                    e["code"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let cases = [
        (
            json!({"name": " ", "scopes": ["devices:read"]}),
            ("name", "required"),
        ),
        (
            json!({"name": "k".repeat(65), "scopes": ["devices:read"]}),
            ("name", "too_long"),
        ),
        (
            json!({"name": "a\u{202E}b", "scopes": ["devices:read"]}),
            ("name", "invalid_characters"),
        ),
        (json!({"name": "k", "scopes": []}), ("scopes", "required")),
        (
            json!({"name": "k", "scopes": ["admin"]}),
            ("scopes", "unknown_scope"),
        ),
        (
            json!({"name": "k", "scopes": ["devices:read"], "expires_at": "2001-01-01T00:00:00Z"}),
            ("expires_at", "in_the_past"),
        ),
        (
            json!({"name": "k", "scopes": ["devices:read"], "expires_at": "2999-01-01T00:00:00Z"}),
            ("expires_at", "too_far"),
        ),
        (
            json!({"name": "k", "scopes": ["devices:read"], "allowed_cidrs": ["10.0.0.1/8"]}),
            ("allowed_cidrs", "host_bits_set"),
        ),
        (
            json!({"name": "k", "scopes": ["devices:read"], "allowed_cidrs": ["10.0.0.0/33"]}),
            ("allowed_cidrs", "invalid_cidr"),
        ),
        (
            json!({"name": "k", "scopes": ["devices:read"],
                   "allowed_cidrs": (0..33).map(|i| format!("10.0.{i}.0/24")).collect::<Vec<_>>()}),
            ("allowed_cidrs", "too_many"),
        ),
    ];
    for (body, (field, code)) in cases {
        let problem = invalid(body.clone()).await;
        assert_eq!(codes(&problem), [(field.to_owned(), code.to_owned())], "{body}");
    }
    // Everything wrong at once: every field named.
    let all = invalid(
        json!({"name": "", "scopes": ["nope"], "expires_at": "2001-01-01T00:00:00Z",
                             "allowed_cidrs": ["x"]}),
    )
    .await;
    assert_eq!(
        error_fields(&all),
        ["name", "scopes", "expires_at", "allowed_cidrs"]
    );

    // Wrong JSON shapes name the field.
    for (body, field) in [
        (json!({"scopes": ["devices:read"]}), "(body)"),
        (json!({"name": "k"}), "(body)"),
        (json!({"name": 7, "scopes": ["devices:read"]}), "name"),
        (json!({"name": "k", "scopes": "devices:read"}), "scopes"),
        (
            json!({"name": "k", "scopes": ["devices:read"], "expires_at": "tomorrow"}),
            "expires_at",
        ),
        (
            json!({"name": "k", "scopes": ["devices:read"], "allowed_cidrs": "10.0.0.0/8"}),
            "allowed_cidrs",
        ),
        (
            json!({"name": "k", "scopes": ["devices:read"], "role": "admin"}),
            "role",
        ),
    ] {
        let response = app.post_json_auth("/api-keys", &token, &body).await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "malformed-body").await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }

    // Names are unique among active keys, ignoring case.
    create_key(
        &app,
        &token,
        &json!({"name": "Relay", "scopes": ["signals:publish"]}),
    )
    .await;
    assert_problem(
        app.post_json_auth(
            "/api-keys",
            &token,
            &json!({"name": "relay", "scopes": ["signals:read"]}),
        )
        .await,
        StatusCode::CONFLICT,
        "api-key-name-taken",
    )
    .await;

    // Paths and queries.
    assert_problem(
        app.post_auth("/api-keys/not-a-uuid/rotate", &token).await,
        StatusCode::BAD_REQUEST,
        "malformed-id",
    )
    .await;
    let delete = app
        .client
        .delete(app.url("/api-keys/42"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_problem(delete, StatusCode::BAD_REQUEST, "malformed-id").await;
    assert_problem(
        app.post_auth("/api-keys/0192f5e4-7c1a-7b3e-9a51-3c2d4e5f6a7b/rotate", &token)
            .await,
        StatusCode::NOT_FOUND,
        "not-found",
    )
    .await;
    let bad_limit = assert_problem(
        app.get_auth("/api-keys?limit=0", &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_eq!(error_fields(&bad_limit), ["limit"]);
    let bad_cursor = assert_problem(
        app.get_auth("/api-keys?cursor=zzz", &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_eq!(error_fields(&bad_cursor), ["cursor"]);
    assert_problem(
        app.get_auth("/api-keys?sort=name", &token).await,
        StatusCode::BAD_REQUEST,
        "malformed-query",
    )
    .await;
    assert_problem(
        app.client.get(app.url("/api-keys")).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid-token",
    )
    .await;
}

#[tokio::test]
async fn keys_are_paged_newest_first() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("pager").await;
    for name in ["one", "two", "three"] {
        create_key(&app, &token, &json!({"name": name, "scopes": ["devices:read"]})).await;
    }
    let first: Value = app
        .get_auth("/api-keys?limit=2", &token)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["three", "two"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .get_auth(&format!("/api-keys?limit=2&cursor={cursor}"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"][0]["name"], "one");
    assert!(rest["next_cursor"].is_null());
}

#[tokio::test]
async fn each_key_has_its_own_rate_limit() {
    let app = spawn_limited_app(&[
        ("EAGATE_RATE_LIMIT_API_KEY_PER_MINUTE", "3"),
        ("EAGATE_RATE_LIMIT_PER_IP_PER_MINUTE", "1000"),
    ])
    .await;
    let (token, _) = app.user_with_tokens("limited").await;
    let a = secret(&create_key(&app, &token, &json!({"name": "a", "scopes": ["devices:read"]})).await);
    let b = secret(&create_key(&app, &token, &json!({"name": "b", "scopes": ["devices:read"]})).await);
    for _ in 0..3 {
        assert_eq!(app.get_auth("/devices", &a).await.status(), StatusCode::OK);
    }
    assert_rate_limited(app.get_auth("/devices", &a).await).await;
    assert_eq!(
        app.get_auth("/devices", &b).await.status(),
        StatusCode::OK,
        "another key has its own budget"
    );
    assert_eq!(
        app.get_auth("/devices", &token).await.status(),
        StatusCode::OK,
        "the owner's session too"
    );
}

#[tokio::test]
async fn a_revocation_takes_effect_at_once_on_every_instance() {
    let app = spawn_app().await;
    let other = app.second_instance().await;
    let (token, _) = app.user_with_tokens("twoinstances").await;
    let key = create_key(
        &app,
        &token,
        &json!({"name": "fleet", "scopes": ["devices:read"]}),
    )
    .await;
    let on_other = || {
        app.client
            .get(format!("{other}/api/v1/devices"))
            .bearer_auth(secret(&key))
            .send()
    };
    assert_eq!(
        on_other().await.unwrap().status(),
        StatusCode::OK,
        "the key works on both"
    );
    let revoked = app
        .client
        .delete(app.url(&format!("/api-keys/{}", key["id"].as_str().unwrap())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    // No wait: the very next request on the other instance is refused.
    assert_problem(
        on_other().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "api-key-revoked",
    )
    .await;
}
