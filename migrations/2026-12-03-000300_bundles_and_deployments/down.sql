DROP TRIGGER device_deployment_revisions_notify ON device_deployment_revisions;
DROP TABLE device_deployment_revisions;
DROP TABLE deployment_devices;
DROP TABLE deployments;
DROP TABLE device_labels;
DROP TABLE bundle_chunks;
DROP TABLE bundles;
