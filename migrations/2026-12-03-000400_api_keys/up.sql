-- API keys for automation (issue 17). A key is stored only as the
-- HMAC-SHA256 of its secret under the server's EAGATE_API_KEY_SECRET.
CREATE TABLE api_keys (
    id            uuid        PRIMARY KEY,
    owner_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    -- lower(name): unique among the owner's active keys.
    name_key      text        NOT NULL,
    -- `eag_live_` and the first characters of the current secret (shown in listings).
    prefix        text        NOT NULL,
    secret_hash   bytea       NOT NULL UNIQUE CHECK (octet_length(secret_hash) >= 16),
    scopes        text[]      NOT NULL CHECK (cardinality(scopes) > 0),
    -- CIDRs the key may be used from; empty: anywhere.
    allowed_cidrs text[]      NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    expires_at    timestamptz,
    -- Coalesced in memory and written once per flush interval.
    last_used_at  timestamptz,
    rotated_at    timestamptz,
    revoked_at    timestamptz
);
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (owner_id, name_key) WHERE revoked_at IS NULL;
CREATE INDEX api_keys_owner_created ON api_keys (owner_id, created_at DESC, id DESC);

-- The administrator role (issue 17): a row per administrator; every other
-- account is an owner. Granted and revoked only by `eagate admin grant|revoke`.
CREATE TABLE account_roles (
    user_id    uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    role       text        NOT NULL CHECK (role IN ('admin')),
    granted_at timestamptz NOT NULL
);

-- Accounts an administrator disabled: their sessions, API keys and devices
-- are refused (read with each of them) until the row is deleted again.
CREATE TABLE account_disabled (
    user_id     uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    disabled_at timestamptz NOT NULL
);

-- Cached device credentials carry the owner's state: disabling or
-- enabling an account notifies every instance about each of its devices.
CREATE FUNCTION eagate_notify_account_devices() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eagate_changes', 'd:' || replace(d.id::text, '-', ''))
    FROM devices AS d WHERE d.owner_id = COALESCE(NEW.user_id, OLD.user_id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER account_disabled_notify
    AFTER INSERT OR DELETE ON account_disabled
    FOR EACH ROW EXECUTE FUNCTION eagate_notify_account_devices();
