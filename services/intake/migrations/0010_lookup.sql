-- One lookup (GET /api/v1/tickets): a ticket's lead unit as dispatch last
-- announced it, indexes for the newest-first pages, and the record of every
-- lookup of a caller's history by phone (a read of personal data).
ALTER TABLE tickets
    ADD COLUMN unit_id TEXT,
    ADD COLUMN unit_name TEXT,
    -- When that unit was given the order: a late event of an earlier
    -- dispatch does not move it back.
    ADD COLUMN unit_at TIMESTAMPTZ;

CREATE INDEX tickets_pages ON tickets (tenant, created_at DESC, id DESC);
CREATE INDEX tickets_phone_pages
    ON tickets (tenant, citizen_phone_bidx, created_at DESC, id DESC)
    WHERE citizen_phone_bidx IS NOT NULL;
CREATE INDEX tickets_unit_pages ON tickets (tenant, unit_id, created_at DESC, id DESC)
    WHERE unit_id IS NOT NULL;

CREATE TABLE lookup_reads (
    id         BIGSERIAL PRIMARY KEY,
    tenant     TEXT NOT NULL,
    -- The reader (JWT sub) and the roles they read with.
    reader     TEXT NOT NULL,
    roles      TEXT NOT NULL,
    -- The phone's blind index, never the phone.
    phone_bidx TEXT NOT NULL,
    found      INTEGER NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX lookup_reads_tenant ON lookup_reads (tenant, at DESC);
