-- Every hand-over of a caller's contact to another service (the
-- notification path), for audit: which ticket, which client key, why.
CREATE TABLE contact_reads (
    id         BIGSERIAL PRIMARY KEY,
    ticket_id  UUID NOT NULL REFERENCES tickets (id),
    tenant     TEXT NOT NULL,
    -- First 12 hex digits of the client key's SHA-256.
    client     TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX contact_reads_ticket ON contact_reads (ticket_id, at);
