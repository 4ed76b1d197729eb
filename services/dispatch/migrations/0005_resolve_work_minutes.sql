-- Working minutes from the clocks' start to the resolution, by the tenant's
-- calendar at the moment of resolving; evaluation averages them.
ALTER TABLE work_orders ADD COLUMN IF NOT EXISTS resolve_work_minutes INTEGER;
