use diesel::QueryableByName;
use diesel::sql_types::{Bytea, Text};
use diesel_async::RunQueryDsl;
use eagate_crypto::{MasterKeyring, XChaChaSealer, secret_fingerprint};
use eagate_domain::device::{DeviceId, SealedSecret, SecretSealer as _};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

fn actions(trail: &Value) -> Vec<String> {
    trail["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_whole_device_lifecycle_as_the_issue_describes_it() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("ann").await;

    // Register two devices; each secret is shown once.
    let response = app
        .post_json_auth("/devices", &token, &json!({"name": "London VPS"}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let first: Value = response.json().await.unwrap();
    let london = first["device"].clone();
    let london_secret = first["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        location,
        format!("/api/v1/devices/{}", london["id"].as_str().unwrap())
    );
    assert!(london_secret.starts_with("eags_") && london_secret.len() == 48);
    assert_eq!(london["status"], "active");
    assert_eq!(london["secret_fingerprint"], secret_fingerprint(&london_secret));
    for field in ["revoked_at", "last_seen_at", "last_poll_at", "last_ack_at"] {
        assert!(london[field].is_null(), "{field}");
    }
    let (tokyo, tokyo_secret) = app.create_device(&token, "Tokyo laptop").await;
    let (london_id, tokyo_id) = (london["id"].as_str().unwrap(), tokyo["id"].as_str().unwrap());

    // Listing and reading never show a secret.
    let list = json_of(app.get_auth("/devices", &token).await).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Tokyo laptop", "London VPS"], "newest first");
    assert!(list["next_cursor"].is_null());
    let one = json_of(app.get_auth(&format!("/devices/{london_id}"), &token).await).await;
    assert_eq!(one, london);
    for body in [list.to_string(), one.to_string()] {
        assert!(!body.contains(&london_secret) && !body.contains(&tokyo_secret));
        assert!(!body.contains("secret\""), "no secret field: {body}");
    }

    // Rename one.
    let renamed = app
        .patch_json_auth(
            &format!("/devices/{london_id}"),
            &token,
            &json!({"name": "London VPS #2"}),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    assert_eq!(json_of(renamed).await["name"], "London VPS #2");

    // Rotate its secret: new secret, new fingerprint.
    let rotated = app
        .post_json_auth(
            &format!("/devices/{london_id}/rotate-secret"),
            &token,
            &json!({"grace_seconds": 600}),
        )
        .await;
    assert_eq!(rotated.status(), StatusCode::OK);
    assert_eq!(rotated.headers()["cache-control"], "no-store");
    let rotated = json_of(rotated).await;
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, london_secret);
    assert_ne!(
        rotated["device"]["secret_fingerprint"],
        london["secret_fingerprint"]
    );
    assert_eq!(
        rotated["device"]["secret_fingerprint"],
        secret_fingerprint(new_secret)
    );

    // Revoke the other: permanent.
    let revoked = app
        .post_auth(&format!("/devices/{tokyo_id}/revoke"), &token)
        .await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let tokyo_now = json_of(app.get_auth(&format!("/devices/{tokyo_id}"), &token).await).await;
    assert_eq!(tokyo_now["status"], "revoked");
    assert!(tokyo_now["revoked_at"].is_string());
    let again = app
        .post_auth(&format!("/devices/{tokyo_id}/revoke"), &token)
        .await;
    assert_eq!(
        again.status(),
        StatusCode::NO_CONTENT,
        "revoking twice is harmless"
    );
    let rename_revoked = app
        .patch_json_auth(&format!("/devices/{tokyo_id}"), &token, &json!({"name": "Back"}))
        .await;
    assert_problem(rename_revoked, StatusCode::CONFLICT, "device-not-active").await;
    let rotate_revoked = app
        .post_auth(&format!("/devices/{tokyo_id}/rotate-secret"), &token)
        .await;
    assert_problem(rotate_revoked, StatusCode::CONFLICT, "device-not-active").await;

    // Filters.
    let active = json_of(app.get_auth("/devices?status=active", &token).await).await;
    assert_eq!(active["items"].as_array().unwrap().len(), 1);
    let gone = json_of(app.get_auth("/devices?status=revoked", &token).await).await;
    assert_eq!(gone["items"][0]["id"], tokyo["id"]);

    // The audit trail tells the story, newest first.
    let trail = json_of(app.get_auth("/audit", &token).await).await;
    assert_eq!(
        actions(&trail),
        [
            "device.revoked",
            "device.secret_rotated",
            "device.renamed",
            "device.registered",
            "device.registered",
            "login.succeeded",
            "account.registered"
        ]
    );
    let renamed_event = &trail["items"][2];
    assert_eq!(renamed_event["details"]["from"], "London VPS");
    assert_eq!(renamed_event["details"]["to"], "London VPS #2");
    assert_eq!(renamed_event["device_id"], london["id"]);
    assert_eq!(renamed_event["client_ip"], "127.0.0.1");
    assert!(!trail.to_string().contains(&london_secret));

    // A second user sees none of it.
    let (other, _) = app.user_with_tokens("bob").await;
    assert!(
        json_of(app.get_auth("/devices", &other).await).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        actions(&json_of(app.get_auth("/audit", &other).await).await),
        ["login.succeeded", "account.registered"]
    );
}

#[tokio::test]
async fn another_users_device_is_indistinguishable_from_a_missing_one() {
    let app = spawn_app().await;
    let (ann, _) = app.user_with_tokens("ann").await;
    let (bob, _) = app.user_with_tokens("bob").await;
    let (device, _) = app.create_device(&ann, "Ann's EA").await;
    let id = device["id"].as_str().unwrap().to_owned();
    let missing = Uuid::now_v7().to_string();
    for target in [&id, &missing] {
        let mut bodies = Vec::new();
        let responses = [
            app.get_auth(&format!("/devices/{target}"), &bob).await,
            app.patch_json_auth(&format!("/devices/{target}"), &bob, &json!({"name": "Mine"}))
                .await,
            app.post_auth(&format!("/devices/{target}/revoke"), &bob).await,
            app.post_auth(&format!("/devices/{target}/rotate-secret"), &bob)
                .await,
        ];
        for response in responses {
            let mut body = assert_problem(response, StatusCode::NOT_FOUND, "not-found").await;
            body.as_object_mut().unwrap().remove("instance");
            bodies.push(body);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    }
    // Ann's device is untouched.
    let still = json_of(app.get_auth(&format!("/devices/{id}"), &ann).await).await;
    assert_eq!(still, device);
}

#[tokio::test]
async fn device_names_are_validated() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("namer").await;
    for (name, code) in [
        ("", "required"),
        ("   \t ", "required"),
        (&"x".repeat(65) as &str, "too_long"),
        ("tab\there", "invalid_characters"),
        ("nul\u{0}byte", "invalid_characters"),
        ("bell\u{7}", "invalid_characters"),
        ("spoof\u{202E}gnp.exe", "invalid_characters"),
    ] {
        let response = app
            .post_json_auth("/devices", &token, &json!({"name": name}))
            .await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
        assert_eq!(error_fields(&problem), ["name"], "{name:?}");
        assert_eq!(problem["errors"][0]["code"], code, "{name:?}");
    }
    for (name, stored) in [
        ("🚀 Rocket EA", "🚀 Rocket EA"),
        ("حساب التداول", "حساب التداول"),
        ("x'; DROP TABLE devices;--", "x'; DROP TABLE devices;--"),
        (
            &format!("  {}  ", "y".repeat(64)) as &str,
            &"y".repeat(64) as &str,
        ),
        ("Cafe\u{301}", "Café"),
    ] {
        let (device, _) = app.create_device(&token, name).await;
        assert_eq!(device["name"], stored);
    }
    // Unique per owner, ignoring case; another owner may reuse it.
    app.create_device(&token, "Main").await;
    let dup = app
        .post_json_auth("/devices", &token, &json!({"name": "MAIN"}))
        .await;
    assert_problem(dup, StatusCode::CONFLICT, "device-name-taken").await;
    let (other, _) = app.user_with_tokens("other").await;
    app.create_device(&other, "Main").await;
    // Wrong shapes.
    for body in [
        json!({}),
        json!({"name": 5}),
        json!({"name": "a", "extra": 1}),
        json!({"name": null}),
    ] {
        let response = app.post_json_auth("/devices", &token, &body).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "malformed-body").await;
    }
}

#[tokio::test]
async fn malformed_ids_and_queries_are_bad_requests() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("ids").await;
    for path in [
        "/devices/not-a-uuid",
        "/devices/123",
        "/devices/not-a-uuid/revoke",
        "/devices/x/rotate-secret",
    ] {
        let response = if path.ends_with("revoke") || path.ends_with("secret") {
            app.post_auth(path, &token).await
        } else {
            app.get_auth(path, &token).await
        };
        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "malformed-id").await;
        assert_eq!(error_fields(&problem), ["id"]);
    }
    let problem = assert_problem(
        app.get_auth("/devices?limit=0&status=gone&cursor=zzz", &token)
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    assert_eq!(error_fields(&problem), ["status", "limit", "cursor"]);
    for query in ["limit=101", "limit=-1", "limit=abc", "limit=1.5"] {
        let problem = assert_problem(
            app.get_auth(&format!("/devices?{query}"), &token).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
        )
        .await;
        assert_eq!(error_fields(&problem), ["limit"], "{query}");
    }
    assert_problem(
        app.get_auth("/devices?colour=red", &token).await,
        StatusCode::BAD_REQUEST,
        "malformed-query",
    )
    .await;
    assert_problem(
        app.get_auth("/audit?limit=0", &token).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation-failed",
    )
    .await;
    // Without a token, devices are not reachable at all.
    let response = app.client.get(app.url("/devices")).send().await.unwrap();
    assert_problem(response, StatusCode::UNAUTHORIZED, "invalid-token").await;
}

#[tokio::test]
async fn pagination_is_stable_while_devices_are_added() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("pager").await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(app.create_device(&token, &format!("EA {n}")).await.0["id"].clone());
    }
    let page1 = json_of(app.get_auth("/devices?limit=2", &token).await).await;
    let cursor = page1["next_cursor"].as_str().unwrap().to_owned();
    // New devices arrive between page requests.
    app.create_device(&token, "Late 1").await;
    app.create_device(&token, "Late 2").await;
    let mut seen: Vec<Value> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].clone())
        .collect();
    let mut next = Some(cursor);
    while let Some(cursor) = next {
        let page = json_of(
            app.get_auth(&format!("/devices?limit=2&cursor={cursor}"), &token)
                .await,
        )
        .await;
        seen.extend(page["items"].as_array().unwrap().iter().map(|d| d["id"].clone()));
        next = page["next_cursor"].as_str().map(str::to_owned);
    }
    created.reverse();
    assert_eq!(seen, created, "every original device exactly once, newest first");
}

#[tokio::test]
async fn the_active_device_limit_is_configurable() {
    let app = spawn_app_with(&[("EAGATE_MAX_DEVICES_PER_ACCOUNT", "2")]).await;
    let (token, _) = app.user_with_tokens("limited").await;
    let (first, _) = app.create_device(&token, "One").await;
    app.create_device(&token, "Two").await;
    let third = app
        .post_json_auth("/devices", &token, &json!({"name": "Three"}))
        .await;
    let problem = assert_problem(third, StatusCode::CONFLICT, "device-limit-reached").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("at most 2"),
        "{problem}"
    );
    app.post_auth(
        &format!("/devices/{}/revoke", first["id"].as_str().unwrap()),
        &token,
    )
    .await;
    app.create_device(&token, "Three").await;
}

#[tokio::test]
async fn rotation_grace_is_validated() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("rotator").await;
    let (device, _) = app.create_device(&token, "EA").await;
    let path = format!("/devices/{}/rotate-secret", device["id"].as_str().unwrap());
    for grace in [json!(-1), json!(86_401)] {
        let response = app
            .post_json_auth(&path, &token, &json!({"grace_seconds": grace}))
            .await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "validation-failed").await;
        assert_eq!(error_fields(&problem), ["grace_seconds"]);
    }
    for grace in [json!("60"), json!(1.5), json!(1e30)] {
        let response = app
            .post_json_auth(&path, &token, &json!({"grace_seconds": grace}))
            .await;
        assert_problem(response, StatusCode::BAD_REQUEST, "malformed-body").await;
    }
    for body in [
        json!({}),
        json!({"grace_seconds": 0}),
        json!({"grace_seconds": 86_400}),
        json!({"grace_seconds": null}),
    ] {
        let response = app.post_json_auth(&path, &token, &body).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
    }
    assert_eq!(
        app.post_auth(&path, &token).await.status(),
        StatusCode::OK,
        "no body at all"
    );
}

#[derive(QueryableByName)]
struct RawRow {
    #[diesel(sql_type = Text)]
    json: String,
    #[diesel(sql_type = Text)]
    secret_key_id: String,
    #[diesel(sql_type = Bytea)]
    secret_sealed: Vec<u8>,
}

async fn raw_device_row(app: &TestApp, id: &str) -> RawRow {
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "SELECT row_to_json(d)::text AS json, secret_key_id, secret_sealed FROM devices d WHERE id = $1::uuid",
    )
    .bind::<Text, _>(id)
    .get_result(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_database_alone_holds_no_usable_secret() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("vault").await;
    let (device, secret) = app.create_device(&token, "EA").await;
    let id = device["id"].as_str().unwrap();
    let raw = raw_device_row(&app, id).await;
    let body = secret.strip_prefix("eags_").unwrap();
    let full_sha: String = {
        use sha2::Digest as _;
        sha2::Sha256::digest(secret.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    for needle in [secret.as_str(), body, &full_sha] {
        assert!(
            !raw.json.contains(needle),
            "the row contains {needle:?}: {}",
            raw.json
        );
    }
    assert!(
        !raw.secret_sealed
            .windows(body.len())
            .any(|w| w == body.as_bytes())
    );

    // The sealed bytes only open with the server's master key and only for
    // this device: with a guessed key they are useless.
    let sealed = SealedSecret {
        key_id: raw.secret_key_id.clone(),
        ciphertext: raw.secret_sealed.clone(),
    };
    let device_id = DeviceId::from_uuid(id.parse().unwrap());
    let guessed = MasterKeyring::parse(&MasterKeyring::generate_entry(&raw.secret_key_id).unwrap()).unwrap();
    assert!(XChaChaSealer::new(guessed).open(device_id, &sealed).is_err());
    let master = eagate_server_master_keyring(&app);
    let real = XChaChaSealer::new(master);
    assert!(
        real.open(DeviceId::from_uuid(Uuid::now_v7()), &sealed).is_err(),
        "bound to its device"
    );
    assert_eq!(real.open(device_id, &sealed).unwrap().expose(), secret);
}

fn eagate_server_master_keyring(app: &TestApp) -> MasterKeyring {
    match &app.settings.devices.master_keys {
        eagate_server::config::MasterKeySource::Inline(keys) => {
            use secrecy::ExposeSecret as _;
            MasterKeyring::parse(keys.expose_secret()).unwrap()
        }
        other => panic!("tests configure inline master keys, not {other:?}"),
    }
}

#[tokio::test]
async fn master_key_rotation_reseals_without_changing_secrets() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("rotor").await;
    let (a, a_secret) = app.create_device(&token, "A").await;
    let (b, b_old) = app.create_device(&token, "B").await;
    let rotated = json_of(
        app.post_json_auth(
            &format!("/devices/{}/rotate-secret", b["id"].as_str().unwrap()),
            &token,
            &json!({"grace_seconds": 3600}),
        )
        .await,
    )
    .await;
    let b_new = rotated["secret"].as_str().unwrap().to_owned();

    // The operator adds a new current key in front of the old one and runs
    // `eagate keys rotate` (the same use case, against the same database).
    let old_entry = match &app.settings.devices.master_keys {
        eagate_server::config::MasterKeySource::Inline(keys) => {
            use secrecy::ExposeSecret as _;
            keys.expose_secret().to_owned()
        }
        _ => unreachable!(),
    };
    let new_entry = MasterKeyring::generate_entry("test2").unwrap();
    let mut settings = app.settings.clone();
    settings.devices.master_keys =
        eagate_server::config::MasterKeySource::Inline(format!("{new_entry},{old_entry}").into());
    let devices = eagate_server::startup::device_service(&settings, app.db.pool()).unwrap();
    let report = devices.reseal_all().await.unwrap();
    assert_eq!((report.examined, report.resealed), (2, 2));

    // The old key can now be retired: the new one alone opens every secret.
    let only_new = XChaChaSealer::new(MasterKeyring::parse(&new_entry).unwrap());
    let open = |raw: &RawRow, id: &Value| {
        only_new
            .open(
                DeviceId::from_uuid(id.as_str().unwrap().parse().unwrap()),
                &SealedSecret {
                    key_id: raw.secret_key_id.clone(),
                    ciphertext: raw.secret_sealed.clone(),
                },
            )
            .unwrap()
            .expose()
            .to_owned()
    };
    let raw_a = raw_device_row(&app, a["id"].as_str().unwrap()).await;
    let raw_b = raw_device_row(&app, b["id"].as_str().unwrap()).await;
    assert_eq!(raw_a.secret_key_id, "test2");
    assert_eq!(open(&raw_a, &a["id"]), a_secret);
    assert_eq!(open(&raw_b, &b["id"]), b_new);
    assert!(
        raw_b.json.contains("\"prev_secret_key_id\":\"test2\""),
        "{}",
        raw_b.json
    );
    assert_ne!(b_old, b_new);
    // Fingerprints did not change: the secrets are the same.
    let after = json_of(
        app.get_auth(&format!("/devices/{}", a["id"].as_str().unwrap()), &token)
            .await,
    )
    .await;
    assert_eq!(after["secret_fingerprint"], a["secret_fingerprint"]);
}

#[tokio::test]
async fn deleting_the_account_deletes_its_devices() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("leaver").await;
    app.create_device(&token, "One").await;
    app.create_device(&token, "Two").await;
    let (keeper, _) = app.user_with_tokens("keeper").await;
    app.create_device(&keeper, "Kept").await;
    let response = app.delete_account(&token, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.count("SELECT count(*) AS n FROM devices").await, 1);
    // The audit trail keeps the record of the deletion.
    let deleted = app
        .count("SELECT count(*) AS n FROM audit_events WHERE action = 'account.deleted'")
        .await;
    assert_eq!(deleted, 1);
}

#[tokio::test]
async fn secrets_and_passwords_never_reach_the_logs() {
    let app = spawn_app().await;
    let (token, _) = app.user_with_tokens("logged").await;
    let response = app
        .client
        .post(app.url("/devices"))
        .bearer_auth(&token)
        .header("x-request-id", "log-test-register")
        .json(&json!({"name": "Logged EA"}))
        .send()
        .await
        .unwrap();
    let created: Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let rotated: Value = app
        .client
        .post(app.url(&format!(
            "/devices/{}/rotate-secret",
            created["device"]["id"].as_str().unwrap()
        )))
        .bearer_auth(&token)
        .header("x-request-id", "log-test-rotate")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rotated_secret = rotated["secret"].as_str().unwrap().to_owned();
    let logs = captured_logs();
    // The capture works: both requests were logged, with their ids...
    assert!(logs.contains("log-test-register") && logs.contains("log-test-rotate"));
    // ...and nothing secret was.
    for needle in [secret.as_str(), rotated_secret.as_str(), PASSWORD, token.as_str()] {
        assert!(!logs.contains(needle), "a secret reached the logs");
    }
}
