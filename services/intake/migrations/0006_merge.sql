-- Merging (并件): a merged ticket points at its master and follows it.
-- `forwarded` tells whether dispatch was ever told of the ticket
-- (`ticket.received`): a ticket merged at intake was not, so unmerging it
-- must tell dispatch then.
ALTER TABLE tickets
  ADD COLUMN merged_into UUID REFERENCES tickets (id),
  ADD COLUMN merged_at TIMESTAMPTZ,
  ADD COLUMN forwarded BOOLEAN NOT NULL DEFAULT TRUE;
CREATE INDEX tickets_merged_into ON tickets (merged_into) WHERE merged_into IS NOT NULL;

-- The duplicate check reads the newest tickets of a caller or an address
-- inside the window: keep those look-ups bounded for busy callers too.
CREATE INDEX tickets_phone_created ON tickets (tenant, citizen_phone_bidx, created_at DESC);
DROP INDEX tickets_phone;
CREATE INDEX tickets_address_created ON tickets (tenant, address_bidx, created_at DESC)
  WHERE address_bidx IS NOT NULL;
DROP INDEX tickets_address;
