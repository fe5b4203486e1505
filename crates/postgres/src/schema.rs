// @generated automatically by Diesel CLI.

diesel::table! {
    account_disabled (user_id) {
        user_id -> Uuid,
        disabled_at -> Timestamptz,
    }
}

diesel::table! {
    account_roles (user_id) {
        user_id -> Uuid,
        role -> Text,
        granted_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        owner_id -> Uuid,
        name -> Text,
        name_key -> Text,
        prefix -> Text,
        secret_hash -> Bytea,
        scopes -> Array<Nullable<Text>>,
        allowed_cidrs -> Array<Nullable<Text>>,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        rotated_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Uuid,
        occurred_at -> Timestamptz,
        action -> Text,
        user_id -> Nullable<Uuid>,
        device_id -> Nullable<Uuid>,
        client_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Jsonb,
    }
}

diesel::table! {
    bundle_chunks (bundle_id, start) {
        bundle_id -> Uuid,
        start -> Int8,
        data -> Bytea,
    }
}

diesel::table! {
    bundles (id) {
        id -> Uuid,
        owner_id -> Uuid,
        name -> Text,
        version -> Text,
        notes -> Text,
        size_bytes -> Nullable<Int8>,
        sha256 -> Nullable<Text>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    config_versions (id) {
        id -> Int8,
        owner_id -> Uuid,
        device_id -> Nullable<Uuid>,
        version -> Int4,
        document -> Jsonb,
        change -> Text,
        rolled_back_to -> Nullable<Int4>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    deployment_devices (deployment_id, device_id) {
        deployment_id -> Uuid,
        device_id -> Uuid,
        position -> Int4,
        wave -> Int4,
        status -> Text,
        reason -> Nullable<Text>,
        started_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    deployments (id) {
        id -> Uuid,
        owner_id -> Uuid,
        bundle_id -> Uuid,
        target -> Text,
        waves -> Array<Nullable<Int4>>,
        abort_failure_percent -> Nullable<Int4>,
        abort_min_finished -> Nullable<Int4>,
        timeout_minutes -> Nullable<Int4>,
        state -> Text,
        current_wave -> Int4,
        revision -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        swept_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    device_config_revisions (device_id) {
        device_id -> Uuid,
        revision -> Int8,
    }
}

diesel::table! {
    device_deployment_revisions (device_id) {
        device_id -> Uuid,
        revision -> Int8,
    }
}

diesel::table! {
    device_heartbeats (device_id) {
        device_id -> Uuid,
        received_at -> Timestamptz,
        heartbeat -> Jsonb,
    }
}

diesel::table! {
    device_labels (device_id, label) {
        device_id -> Uuid,
        label -> Text,
    }
}

diesel::table! {
    devices (id) {
        id -> Uuid,
        owner_id -> Uuid,
        name -> Text,
        name_key -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        last_seen_at -> Nullable<Timestamptz>,
        last_poll_at -> Nullable<Timestamptz>,
        last_ack_at -> Nullable<Timestamptz>,
        secret_fingerprint -> Text,
        secret_key_id -> Text,
        secret_sealed -> Bytea,
        prev_secret_key_id -> Nullable<Text>,
        prev_secret_sealed -> Nullable<Bytea>,
        prev_secret_expires_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    signal_deliveries (signal_id, device_id) {
        signal_id -> Uuid,
        device_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        first_polled_at -> Nullable<Timestamptz>,
        acknowledged_at -> Nullable<Timestamptz>,
        outcome -> Nullable<Text>,
        ticket -> Nullable<Int8>,
        fill_price -> Nullable<Float8>,
        message -> Nullable<Text>,
        cancelled_at -> Nullable<Timestamptz>,
        instrument -> Nullable<Text>,
        volume -> Nullable<Float8>,
        skip_reason -> Nullable<Text>,
        adaptation -> Nullable<Jsonb>,
    }
}

diesel::table! {
    signals (id) {
        id -> Uuid,
        owner_id -> Uuid,
        instrument -> Text,
        side -> Text,
        order_type -> Text,
        volume -> Float8,
        entry_price -> Nullable<Float8>,
        stop_loss -> Nullable<Float8>,
        take_profit -> Nullable<Float8>,
        comment -> Nullable<Text>,
        expires_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        cancelled_at -> Nullable<Timestamptz>,
        idempotency_key -> Nullable<Text>,
        request_description -> Nullable<Text>,
        action -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        email -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(account_disabled -> users (user_id));
diesel::joinable!(account_roles -> users (user_id));
diesel::joinable!(api_keys -> users (owner_id));
diesel::joinable!(bundle_chunks -> bundles (bundle_id));
diesel::joinable!(bundles -> users (owner_id));
diesel::joinable!(config_versions -> devices (device_id));
diesel::joinable!(config_versions -> users (owner_id));
diesel::joinable!(deployment_devices -> deployments (deployment_id));
diesel::joinable!(deployment_devices -> devices (device_id));
diesel::joinable!(deployments -> bundles (bundle_id));
diesel::joinable!(deployments -> users (owner_id));
diesel::joinable!(device_config_revisions -> devices (device_id));
diesel::joinable!(device_deployment_revisions -> devices (device_id));
diesel::joinable!(device_heartbeats -> devices (device_id));
diesel::joinable!(device_labels -> devices (device_id));
diesel::joinable!(devices -> users (owner_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(signals -> users (owner_id));

diesel::allow_tables_to_appear_in_same_query!(
    account_disabled,
    account_roles,
    api_keys,
    audit_events,
    bundle_chunks,
    bundles,
    config_versions,
    deployment_devices,
    deployments,
    device_config_revisions,
    device_deployment_revisions,
    device_heartbeats,
    device_labels,
    devices,
    refresh_tokens,
    sessions,
    signal_deliveries,
    signals,
    users,
);
