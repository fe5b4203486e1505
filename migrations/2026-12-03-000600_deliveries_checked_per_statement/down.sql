DROP TRIGGER devices_truncate_deliveries ON devices;
DROP TRIGGER signals_truncate_deliveries ON signals;
DROP FUNCTION eagate_truncate_deliveries();
DROP TRIGGER devices_delete_deliveries ON devices;
DROP FUNCTION eagate_delete_deliveries_of_devices();
DROP TRIGGER signals_delete_deliveries ON signals;
DROP FUNCTION eagate_delete_deliveries_of_signals();

ALTER TABLE signal_deliveries
    ADD CONSTRAINT signal_deliveries_signal_id_fkey
        FOREIGN KEY (signal_id) REFERENCES signals (id) ON DELETE CASCADE,
    ADD CONSTRAINT signal_deliveries_device_id_fkey
        FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE;
