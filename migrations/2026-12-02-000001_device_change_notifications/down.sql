DROP TRIGGER devices_notify_update ON devices;
DROP TRIGGER devices_notify_insert_delete ON devices;
DROP FUNCTION eagate_notify_device_change();
