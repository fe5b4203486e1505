-- Per-device trading configuration (issue 15, part 1).

-- Per device, a revision that changes whenever its effective configuration
-- may have (its own document or its owner's default); 0 without a row. Read
-- with the credentials and cached with them on every instance, so a poll
-- tells the EA to refetch without a query. (A table of its own: `devices`
-- is at diesel's 16-column limit.)
CREATE TABLE device_config_revisions (
    device_id uuid   PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    revision  bigint NOT NULL CHECK (revision > 0)
);

-- Every version of every document; a scope's current document is its
-- highest version (version 0, the empty document, is never stored).
CREATE TABLE config_versions (
    id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- NULL: the account default every device inherits.
    device_id      uuid        REFERENCES devices (id) ON DELETE CASCADE,
    version        integer     NOT NULL CHECK (version > 0),
    document       jsonb       NOT NULL CHECK (jsonb_typeof(document) = 'object'),
    change         text        NOT NULL CHECK (change IN ('replaced', 'patched', 'rolled_back')),
    rolled_back_to integer     CHECK ((change = 'rolled_back') = (rolled_back_to IS NOT NULL)),
    created_at     timestamptz NOT NULL
);
-- One writer per (scope, version): of two concurrent writes expecting the
-- same version, the second fails here.
CREATE UNIQUE INDEX config_versions_scope_version
    ON config_versions (owner_id, COALESCE(device_id, '00000000-0000-0000-0000-000000000000'::uuid), version DESC);

-- Opening or closing positions.
ALTER TABLE signals ADD COLUMN action text NOT NULL DEFAULT 'open' CHECK (action IN ('open', 'close'));

-- What the device's configuration made of the signal: the broker's symbol
-- and volume it receives, or why it was skipped, and the values it was
-- adapted with (NULL for deliveries stored before configurations existed).
ALTER TABLE signal_deliveries
    ADD COLUMN instrument  text,
    ADD COLUMN volume      double precision CHECK (volume > 0),
    ADD COLUMN skip_reason text,
    ADD COLUMN adaptation  jsonb;

DROP INDEX signal_deliveries_open_idx;
CREATE INDEX signal_deliveries_open_idx ON signal_deliveries (device_id, created_at, signal_id)
    WHERE acknowledged_at IS NULL AND cancelled_at IS NULL AND skip_reason IS NULL;

-- A new revision notifies every instance's cache on commit, like a change of
-- credentials (see device_change_notifications).
CREATE FUNCTION eagate_notify_device_config_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eagate_changes', 'd:' || replace(NEW.device_id::text, '-', ''));
    RETURN NULL;
END;
$$;

CREATE TRIGGER device_config_revisions_notify
    AFTER INSERT OR UPDATE ON device_config_revisions
    FOR EACH ROW EXECUTE FUNCTION eagate_notify_device_config_change();
