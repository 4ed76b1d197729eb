-- Photos and recordings attached to a ticket. The bytes live in the object
-- store (local directory or S3-compatible); this is the index.
CREATE TABLE ticket_attachments (
    id            UUID PRIMARY KEY,
    ticket_id     UUID NOT NULL REFERENCES tickets (id),
    tenant        TEXT NOT NULL,
    -- image | audio
    kind          TEXT NOT NULL,
    -- Decided from the bytes, never from the name the client gave.
    content_type  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    object_key    TEXT NOT NULL,
    uploaded_by   TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (ticket_id, sha256)
);
CREATE INDEX ticket_attachments_ticket ON ticket_attachments (ticket_id, created_at);
