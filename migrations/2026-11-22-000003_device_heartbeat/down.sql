DROP TABLE device_heartbeats;
