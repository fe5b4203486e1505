-- The periodic sweeps (issue 15 follow-up).

-- When the deployment sweep last looked at a running deployment (NULL:
-- never). Each sweep claims a bounded batch, least recently swept first, so
-- every running deployment gets its turn however many there are.
ALTER TABLE deployments ADD COLUMN swept_at timestamptz;
CREATE INDEX deployments_sweep_order ON deployments (swept_at NULLS FIRST, id) WHERE state = 'running';

-- Uploads in progress, which the sweep drops once they are abandoned.
CREATE INDEX bundles_incomplete ON bundles (created_at) WHERE completed_at IS NULL;
