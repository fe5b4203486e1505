DROP INDEX bundles_incomplete;
DROP INDEX deployments_sweep_order;
ALTER TABLE deployments DROP COLUMN swept_at;
