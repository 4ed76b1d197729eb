-- Notification owns notifications and their delivery state.

CREATE TABLE notifications (
    id               UUID PRIMARY KEY,
    tenant           TEXT NOT NULL,
    region_code      TEXT NOT NULL,
    -- unit | person | grid
    recipient_kind   TEXT NOT NULL,
    recipient_id     TEXT NOT NULL,
    recipient_name   TEXT NOT NULL,
    -- log (sms, app push, wechat later)
    channel          TEXT NOT NULL,
    title            TEXT NOT NULL,
    body             TEXT NOT NULL,
    ticket_id        UUID,
    -- The event that caused it: one notification per event, recipient and channel.
    source_event_id  UUID NOT NULL,
    -- pending | sent | failed
    status           TEXT NOT NULL,
    attempts         INT NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A deliverer holds the row until then; after a crash another takes it.
    lease_until      TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at          TIMESTAMPTZ,
    UNIQUE (source_event_id, recipient_kind, recipient_id, channel)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_ticket ON notifications (tenant, ticket_id);
CREATE INDEX notifications_recipient ON notifications (tenant, recipient_id, id);
CREATE INDEX notifications_region ON notifications (region_code text_pattern_ops, id);
