-- The latest heartbeat each EA sent (what it reports about its terminal).
-- Kept beside the device row so a heartbeat does not rewrite the device.
CREATE TABLE device_heartbeats (
    device_id   uuid        PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    received_at timestamptz NOT NULL,
    heartbeat   jsonb       NOT NULL
);
