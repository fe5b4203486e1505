DROP TRIGGER device_config_revisions_notify ON device_config_revisions;
DROP FUNCTION eagate_notify_device_config_change();

DROP INDEX signal_deliveries_open_idx;
CREATE INDEX signal_deliveries_open_idx ON signal_deliveries (device_id, created_at, signal_id)
    WHERE acknowledged_at IS NULL AND cancelled_at IS NULL;
ALTER TABLE signal_deliveries
    DROP COLUMN adaptation,
    DROP COLUMN skip_reason,
    DROP COLUMN volume,
    DROP COLUMN instrument;
ALTER TABLE signals DROP COLUMN action;
DROP TABLE config_versions;
DROP TABLE device_config_revisions;
