-- A household's residents, sealed together as one JSON document.
ALTER TABLE households ADD COLUMN residents_enc TEXT;

-- A key person's or household's last visit is read by target.
CREATE INDEX duty_tasks_target ON duty_tasks (tenant, target_id) WHERE done_at IS NOT NULL;
