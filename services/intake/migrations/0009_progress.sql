-- Intake's copy of the work order's public steps (from dispatch's
-- `ticket.progressed`), so that the tracking page and Open311 follow a
-- ticket to the end even when dispatch cannot be asked.
ALTER TABLE tickets
    ADD COLUMN reply TEXT NOT NULL DEFAULT '',
    -- The time of the latest step applied: an older step arriving late
    -- adds to the timeline but does not move the status back.
    ADD COLUMN progress_at TIMESTAMPTZ,
    -- The time of the step that set the reply (resolve) or took it back
    -- (reopen): steps are applied in any order, the latest one wins.
    ADD COLUMN reply_at TIMESTAMPTZ;

CREATE TABLE ticket_progress (
    id         BIGSERIAL PRIMARY KEY,
    ticket_id  UUID NOT NULL REFERENCES tickets (id),
    tenant     TEXT NOT NULL,
    -- dispatched | sign | resolve | close | reopen
    step       TEXT NOT NULL,
    note       TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX ticket_progress_ticket ON ticket_progress (ticket_id, at);
