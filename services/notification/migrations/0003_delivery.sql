-- Delivery through real channels (decision 0032).
--
-- Status: queued → sending → sent (→ delivered, once receipts come) or
-- failed. `sending` rows are leased until `next_attempt_at`; a row a
-- crashed process left `sending` is taken again once that has passed.
UPDATE notifications SET status = 'queued' WHERE status = 'pending';
DROP INDEX IF EXISTS notifications_due;
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (next_attempt_at)
    WHERE status IN ('queued', 'sending');
-- What happened: `ticket.dispatched`, `callback.invited`… (template
-- codes per kind, the webhook's `kind`).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS kind TEXT NOT NULL DEFAULT '';
-- The place in the recipient's chain of channels, and the channel that
-- carries (or last tried) it; `channel` stays the kind of notice the
-- unique key guards.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS route_step INT NOT NULL DEFAULT 0;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS via TEXT;
-- The provider's id of the message and its answer (no credential, no
-- address).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS provider_id TEXT;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS provider_answer TEXT;
-- Channels given up on, one line each: `<channel>: <why>`.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS fallbacks TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS delivered_at TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS notifications_failed ON notifications (tenant, id) WHERE status = 'failed';

-- Where a staff recipient (a unit, the supervisors, a grid's residents'
-- group) is reached, per channel field: `sms` (a mobile number), `email`,
-- `wecom_robot` (a group robot's key). The address is sealed with the
-- personal-data keyring; the mask is what the API shows.
CREATE TABLE IF NOT EXISTS recipient_addresses (
    id             UUID PRIMARY KEY,
    tenant         TEXT NOT NULL,
    recipient_kind TEXT NOT NULL,
    recipient_id   TEXT NOT NULL,
    field          TEXT NOT NULL,
    address_enc    TEXT NOT NULL,
    address_masked TEXT NOT NULL,
    updated_by     TEXT NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant, recipient_kind, recipient_id, field)
);

-- The notice's variables, rendered with the tenant's template for the
-- channel when it is sent (no personal data: tracking numbers, unit
-- names, categories, deadlines).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS vars JSONB;

-- A tenant's templates: per kind of notice and channel (`*`: every
-- channel), minijinja sources checked before they are saved. An SMS
-- template names the provider's approved template code and sign.
CREATE TABLE IF NOT EXISTS templates (
    tenant            TEXT NOT NULL,
    kind              TEXT NOT NULL,
    channel           TEXT NOT NULL,
    title             TEXT NOT NULL,
    body              TEXT NOT NULL,
    sms_template_code TEXT NOT NULL DEFAULT '',
    sign_name         TEXT NOT NULL DEFAULT '',
    version           INT NOT NULL DEFAULT 1,
    updated_by        TEXT NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, kind, channel)
);

-- What each staff member has read of their inbox (the notices to their
-- unit, or to the supervisors of their tenant).
CREATE TABLE IF NOT EXISTS inbox_reads (
    reader          TEXT NOT NULL,
    notification_id UUID NOT NULL,
    read_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (reader, notification_id)
);
-- An inbox is read through notifications_recipient (tenant, recipient_id,
-- id): one more index on the hottest table would cost every write.

-- The broadcast a message belongs to (grid's `broadcast.requested` id):
-- its progress is counted by status.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS broadcast_id UUID;
CREATE INDEX IF NOT EXISTS notifications_broadcast ON notifications (tenant, broadcast_id)
    WHERE broadcast_id IS NOT NULL;
