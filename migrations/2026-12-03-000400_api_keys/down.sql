DROP TABLE account_disabled;
DROP FUNCTION eagate_notify_account_devices();
DROP TABLE account_roles;
DROP TABLE api_keys;
