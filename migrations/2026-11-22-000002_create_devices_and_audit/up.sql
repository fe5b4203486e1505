-- EA devices and the security audit trail.

CREATE TABLE devices (
    id                     uuid        PRIMARY KEY,
    owner_id               uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                   text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    -- lower(name) as the domain computes it; unique among active devices.
    name_key               text        NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    revoked_at             timestamptz,
    last_seen_at           timestamptz,
    last_poll_at           timestamptz,
    last_ack_at            timestamptz,
    secret_fingerprint     text        NOT NULL,
    -- The device secret, sealed (AEAD) under master key secret_key_id with the
    -- device id as associated data. Never stored in clear.
    secret_key_id          text        NOT NULL,
    secret_sealed          bytea       NOT NULL,
    -- The secret replaced by the last rotation, valid until prev_secret_expires_at.
    prev_secret_key_id     text,
    prev_secret_sealed     bytea,
    prev_secret_expires_at timestamptz,
    CHECK ((prev_secret_sealed IS NULL) = (prev_secret_key_id IS NULL)),
    CHECK ((prev_secret_sealed IS NULL) = (prev_secret_expires_at IS NULL))
);
CREATE UNIQUE INDEX devices_owner_name_active_key ON devices (owner_id, name_key) WHERE revoked_at IS NULL;
CREATE INDEX devices_owner_listing_idx ON devices (owner_id, created_at DESC, id DESC);

-- Append-only: no foreign keys, so the trail outlives the accounts and
-- devices it names.
CREATE TABLE audit_events (
    id          uuid        PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    action      text        NOT NULL,
    user_id     uuid,
    device_id   uuid,
    client_ip   text,
    user_agent  text,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_user_idx ON audit_events (user_id, occurred_at DESC, id DESC);

CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END;
$$;
CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
