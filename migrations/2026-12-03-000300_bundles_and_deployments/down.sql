DROP TABLE deployment_devices;
DROP TABLE deployments;
DROP TABLE bundle_chunks;
DROP TABLE bundles;
