// @generated automatically by Diesel CLI.

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
    device_heartbeats (device_id) {
        device_id -> Uuid,
        received_at -> Timestamptz,
        heartbeat -> Jsonb,
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
    users (id) {
        id -> Uuid,
        username -> Text,
        email -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(device_heartbeats -> devices (device_id));
diesel::joinable!(devices -> users (owner_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_events,
    device_heartbeats,
    devices,
    refresh_tokens,
    sessions,
    users,
);
