-- The tenant's knowledge base for direct answers (直接答复) to
-- consultations, and what a ticket records when answered at intake.

CREATE TABLE kb_entries (
    id          UUID PRIMARY KEY,
    tenant      TEXT NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    -- Leaf or group category codes the entry answers; empty = any.
    categories  TEXT[] NOT NULL DEFAULT '{}',
    valid_from  DATE NOT NULL,
    valid_to    DATE,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX kb_entries_tenant ON kb_entries (tenant) WHERE active;

ALTER TABLE tickets ADD COLUMN answered_kb_id UUID REFERENCES kb_entries (id);
ALTER TABLE tickets ADD COLUMN answered_at TIMESTAMPTZ;
CREATE INDEX tickets_tenant_status_created ON tickets (tenant, status, created_at);
