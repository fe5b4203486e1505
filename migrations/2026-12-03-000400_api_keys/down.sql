DROP TABLE account_roles;
DROP TABLE api_keys;
