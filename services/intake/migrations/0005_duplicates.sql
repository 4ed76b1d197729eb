-- Looking for the same problem reported twice (并件): the window of a
-- tenant's category, the same caller, the same address.
ALTER TABLE tickets ADD COLUMN address_bidx TEXT;
CREATE INDEX tickets_tenant_category_created ON tickets (tenant, category, created_at DESC);
CREATE INDEX tickets_address ON tickets (tenant, address_bidx) WHERE address_bidx IS NOT NULL;
