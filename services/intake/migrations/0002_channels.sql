-- Channels a tenant registers (county platforms, city-management systems,
-- Open311 clients), their credentials, and what a ticket records about the
-- way it came in.

CREATE TABLE channels (
    id          UUID PRIMARY KEY,
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- The ticket channel it stands for (tenant_platform, city_management, ...).
    channel     TEXT NOT NULL,
    -- webhook: HMAC-signed deliveries; open311: api_key.
    auth        TEXT NOT NULL CHECK (auth IN ('webhook', 'open311')),
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    created_by  TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant, name)
);

-- One row per issued credential. A rotation issues a new row and gives the
-- previous one an expiry, so for a while two are accepted.
CREATE TABLE channel_credentials (
    id          UUID PRIMARY KEY,
    channel_id  UUID NOT NULL REFERENCES channels (id),
    -- Webhook HMAC key, encrypted with the PII keyring (it must be read back
    -- to verify signatures).
    secret_enc  TEXT,
    -- SHA-256 of an Open311 api_key (a random 256-bit token, so a plain
    -- digest is enough); the key itself is shown once.
    key_digest  TEXT UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ,
    CHECK ((secret_enc IS NULL) <> (key_digest IS NULL))
);
CREATE INDEX channel_credentials_channel ON channel_credentials (channel_id, created_at DESC);

-- Nonces of accepted webhook deliveries, kept for twice the timestamp window.
CREATE TABLE webhook_nonces (
    channel_id  UUID NOT NULL,
    nonce       TEXT NOT NULL,
    seen_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (channel_id, nonce)
);
CREATE INDEX webhook_nonces_seen ON webhook_nonces (seen_at);

-- Attribute definitions per category (Open311 service definitions).
ALTER TABLE categories ADD COLUMN attributes JSONB NOT NULL DEFAULT '[]';
ALTER TABLE categories ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE categories ADD COLUMN keywords TEXT NOT NULL DEFAULT '';

ALTER TABLE tickets ADD COLUMN kind TEXT NOT NULL DEFAULT 'livelihood';
ALTER TABLE tickets ADD COLUMN confidential BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE tickets ADD COLUMN id_number_enc TEXT;
ALTER TABLE tickets ADD COLUMN attributes JSONB NOT NULL DEFAULT '[]';
ALTER TABLE tickets ADD COLUMN channel_id UUID REFERENCES channels (id);
-- The sending system's own id: a redelivery is the same ticket.
ALTER TABLE tickets ADD COLUMN external_id TEXT;
-- Open311 token, and the client's own fields (account_id, device_id, email,
-- media_url) as encrypted JSON: an e-mail address is personal data.
ALTER TABLE tickets ADD COLUMN public_token TEXT;
ALTER TABLE tickets ADD COLUMN client_meta_enc TEXT;
CREATE UNIQUE INDEX tickets_external ON tickets (channel_id, external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX tickets_public_token ON tickets (tenant, public_token) WHERE public_token IS NOT NULL;
CREATE INDEX tickets_tenant_created ON tickets (tenant, created_at DESC);

-- What a citizen adds after the ticket is accepted (补充信息).
CREATE TABLE ticket_supplements (
    id            BIGSERIAL PRIMARY KEY,
    ticket_id     UUID NOT NULL REFERENCES tickets (id),
    at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_role    TEXT NOT NULL,
    text_redacted TEXT NOT NULL,
    text_enc      TEXT NOT NULL
);
CREATE INDEX ticket_supplements_ticket ON ticket_supplements (ticket_id, at);
