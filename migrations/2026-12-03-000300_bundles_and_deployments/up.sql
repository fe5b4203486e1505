-- EA bundles and deployments (issue 15, parts 2 and 3).

-- One row per uploaded build. A row is written when an upload starts
-- (so a second upload of the same name and version fails at once) and
-- completed when every chunk is stored; incomplete rows are never listed.
CREATE TABLE bundles (
    id           uuid        PRIMARY KEY,
    owner_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 64),
    version      text        NOT NULL CHECK (char_length(version) BETWEEN 1 AND 64),
    notes        text        NOT NULL CHECK (char_length(notes) <= 4096),
    size_bytes   bigint      CHECK (size_bytes >= 0),
    -- Hex SHA-256 of the whole file.
    sha256       text        CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at   timestamptz NOT NULL,
    completed_at timestamptz,
    CHECK ((completed_at IS NULL) = (sha256 IS NULL) AND (sha256 IS NULL) = (size_bytes IS NULL))
);
CREATE UNIQUE INDEX bundles_owner_name_version ON bundles (owner_id, name, version);
CREATE INDEX bundles_owner_listing ON bundles (owner_id, created_at DESC, id DESC) WHERE completed_at IS NOT NULL;

-- The file, in chunks (256 KiB as the server writes them); `start` is the
-- byte offset of the chunk's first byte, so a range read starts at the
-- chunk that holds its first byte.
CREATE TABLE bundle_chunks (
    bundle_id uuid   NOT NULL REFERENCES bundles (id) ON DELETE CASCADE,
    start     bigint NOT NULL CHECK (start >= 0),
    data      bytea  NOT NULL CHECK (octet_length(data) > 0),
    PRIMARY KEY (bundle_id, start)
);

-- Owner-chosen labels on devices, to target deployments (a table of its
-- own: `devices` is at diesel's 16-column limit).
CREATE TABLE device_labels (
    device_id uuid NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    label     text NOT NULL CHECK (label ~ '^[a-z0-9][a-z0-9._-]{0,31}$'),
    PRIMARY KEY (device_id, label)
);
CREATE INDEX device_labels_label ON device_labels (label, device_id);

-- A rollout of one bundle to a fixed set of devices (resolved when it is
-- created), in waves. Bundles are referenced without a cascade: a bundle
-- in use by a deployment cannot be deleted.
CREATE TABLE deployments (
    id                    uuid        PRIMARY KEY,
    owner_id              uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    bundle_id             uuid        NOT NULL REFERENCES bundles (id),
    -- How the devices were chosen: `devices` (a list), `all` or `label:<label>`.
    target                text        NOT NULL CHECK (target IN ('devices', 'all') OR target ~ '^label:[a-z0-9][a-z0-9._-]{0,31}$'),
    -- Cumulative percentages of the devices, ascending, the last 100.
    waves                 integer[]   NOT NULL,
    abort_failure_percent integer     CHECK (abort_failure_percent BETWEEN 0 AND 100),
    abort_min_finished    integer     CHECK (abort_min_finished >= 1),
    timeout_minutes       integer     CHECK (timeout_minutes >= 1),
    state                 text        NOT NULL CHECK (state IN ('running', 'completed', 'aborted', 'cancelled')),
    -- The wave in progress (0-based).
    current_wave          integer     NOT NULL CHECK (current_wave >= 0),
    -- Optimistic concurrency: every write expects the revision it read.
    revision              bigint      NOT NULL CHECK (revision >= 0),
    created_at            timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL
);
CREATE INDEX deployments_owner_listing ON deployments (owner_id, created_at DESC, id DESC);
CREATE INDEX deployments_bundle ON deployments (bundle_id);

-- Each targeted device's progress.
CREATE TABLE deployment_devices (
    deployment_id uuid        NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
    device_id     uuid        NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    -- The device's place in the order the waves were cut from.
    position      integer     NOT NULL CHECK (position >= 0),
    wave          integer     NOT NULL CHECK (wave >= 0),
    status        text        NOT NULL CHECK (status IN ('waiting', 'pending', 'downloading', 'installed', 'failed', 'cancelled')),
    reason        text        CHECK ((status = 'failed') = (reason IS NOT NULL)),
    -- When its wave started (NULL while waiting), and its last change.
    started_at    timestamptz,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (deployment_id, device_id)
);
CREATE INDEX deployment_devices_device ON deployment_devices (device_id, status);

-- Per device, a revision that changes whenever a deployment's record of
-- the device changes (created, its wave started, cancelled, reported). Read
-- with the credentials and cached with them, like the configuration
-- revision, so a poll tells the EA to look at GET /device/deployment
-- without a query; a change notifies every instance's cache on commit.
CREATE TABLE device_deployment_revisions (
    device_id uuid   PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    revision  bigint NOT NULL CHECK (revision > 0)
);

CREATE TRIGGER device_deployment_revisions_notify
    AFTER INSERT OR UPDATE ON device_deployment_revisions
    FOR EACH ROW EXECUTE FUNCTION eagate_notify_device_config_change();
