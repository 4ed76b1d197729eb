-- Intake owns tickets, their personal data (encrypted), their intake-side
-- timeline and each tenant's category tree.

CREATE TABLE categories (
    tenant       TEXT NOT NULL,
    code         TEXT NOT NULL,
    name         TEXT NOT NULL,
    parent_code  TEXT,
    level        SMALLINT NOT NULL,
    sort         INT NOT NULL DEFAULT 0,
    active       BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (tenant, code)
);

-- Daily sequence behind tracking numbers (370202-20261122-00042).
CREATE TABLE tracking_counters (
    tenant  TEXT NOT NULL,
    day     DATE NOT NULL,
    last    INT NOT NULL,
    PRIMARY KEY (tenant, day)
);

CREATE TABLE tickets (
    id                  UUID PRIMARY KEY,
    tenant              TEXT NOT NULL,
    region_code         TEXT NOT NULL,
    tracking_no         TEXT NOT NULL UNIQUE,
    status              TEXT NOT NULL,
    channel             TEXT NOT NULL,
    nature              TEXT NOT NULL,
    category            TEXT NOT NULL,
    urgency             TEXT NOT NULL,
    -- The request text with phone, ID and bank numbers masked (jiesu-pii
    -- redact_text): what every reader, search and event sees.
    content             TEXT NOT NULL,
    -- The text as submitted, encrypted.
    content_enc         TEXT NOT NULL,
    lat                 DOUBLE PRECISION,
    lon                 DOUBLE PRECISION,
    -- Personal data: AES-GCM ciphertexts (jiesu-pii), never plaintext.
    address_enc         TEXT,
    citizen_name_enc    TEXT,
    citizen_phone_enc   TEXT,
    -- Keyed digest of the phone for "same caller" lookups.
    citizen_phone_bidx  TEXT,
    submitter_sub       TEXT NOT NULL,
    submitter_role      TEXT NOT NULL,
    idempotency_key     TEXT,
    request_hash        TEXT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tickets_idempotency
    ON tickets (tenant, submitter_sub, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX tickets_region_created ON tickets (region_code text_pattern_ops, created_at DESC);
CREATE INDEX tickets_submitter ON tickets (submitter_sub, created_at DESC);
CREATE INDEX tickets_phone ON tickets (tenant, citizen_phone_bidx);

CREATE TABLE ticket_events (
    id          BIGSERIAL PRIMARY KEY,
    ticket_id   UUID NOT NULL REFERENCES tickets (id),
    tenant      TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    event       TEXT NOT NULL,
    actor_role  TEXT NOT NULL,
    note        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX ticket_events_ticket ON ticket_events (ticket_id, at);
