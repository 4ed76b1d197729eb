-- The work-order engine: state, clocks and counters on the order, its
-- co-handling units, whistles with their summons, durable timers, and each
-- tenant's SLA policy and working calendar.

ALTER TABLE work_orders
    ADD COLUMN urgency            TEXT NOT NULL DEFAULT 'normal',
    ADD COLUMN level              SMALLINT NOT NULL DEFAULT 1,
    ADD COLUMN paused_at          TIMESTAMPTZ,
    ADD COLUMN extension_days     INTEGER,
    ADD COLUMN returns            INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN extensions         INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN reopens            INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN clock_started_at   TIMESTAMPTZ,
    ADD COLUMN sign_due           TIMESTAMPTZ,
    ADD COLUMN respond_due        TIMESTAMPTZ,
    ADD COLUMN resolve_due        TIMESTAMPTZ,
    ADD COLUMN signed_at          TIMESTAMPTZ,
    ADD COLUMN responded_at       TIMESTAMPTZ,
    ADD COLUMN resolved_at        TIMESTAMPTZ,
    ADD COLUMN closed_at          TIMESTAMPTZ,
    ADD COLUMN reply              TEXT NOT NULL DEFAULT '',
    ADD COLUMN leadership         BOOLEAN NOT NULL DEFAULT FALSE,
    -- While merged: the master's ticket and the state to go back to.
    ADD COLUMN merged_into        UUID,
    ADD COLUMN status_before_merge TEXT,
    -- Bumped on every change; timers of an older version are stale.
    ADD COLUMN version            INTEGER NOT NULL DEFAULT 0;

CREATE INDEX work_orders_due ON work_orders (tenant, resolve_due)
    WHERE status IN ('dispatched', 'signed', 'in_progress', 'returned');

CREATE TABLE work_order_co_units (
    work_order_id  UUID NOT NULL REFERENCES work_orders (id),
    unit_id        TEXT NOT NULL,
    unit_name      TEXT NOT NULL,
    part           TEXT,
    part_at        TIMESTAMPTZ,
    PRIMARY KEY (work_order_id, unit_id)
);

CREATE TABLE summons (
    work_order_id  UUID NOT NULL REFERENCES work_orders (id),
    unit_id        TEXT NOT NULL,
    unit_name      TEXT NOT NULL,
    level          SMALLINT NOT NULL,
    summoned_at    TIMESTAMPTZ NOT NULL,
    due_at         TIMESTAMPTZ NOT NULL,
    reported_at    TIMESTAMPTZ,
    PRIMARY KEY (work_order_id, unit_id, level)
);

-- Durable timers. A replica claims due rows with FOR UPDATE SKIP LOCKED and
-- takes a lease; it fires a timer in a transaction that re-locks the row and
-- sets fired_at, so a timer whose lease ran out (its holder died) is fired
-- by another replica, and never twice.
CREATE TABLE timers (
    id             BIGSERIAL PRIMARY KEY,
    tenant         TEXT NOT NULL,
    work_order_id  UUID NOT NULL,
    -- reminder | urge | supervise | report_overdue
    notice         TEXT NOT NULL,
    -- sign | respond | resolve | report
    deadline       TEXT NOT NULL,
    -- the deadline the notice is about (due_at is when the notice fires)
    deadline_at    TIMESTAMPTZ NOT NULL,
    due_at         TIMESTAMPTZ NOT NULL,
    -- work_orders.version when set; a changed order cancels its timers
    version        INTEGER NOT NULL,
    unit_id        TEXT,
    lease_owner    TEXT,
    lease_until    TIMESTAMPTZ,
    attempts       INTEGER NOT NULL DEFAULT 0,
    fired_at       TIMESTAMPTZ,
    fired_by       TEXT,
    cancelled_at   TIMESTAMPTZ
);
CREATE INDEX timers_pending ON timers (due_at) WHERE fired_at IS NULL AND cancelled_at IS NULL;
CREATE INDEX timers_order ON timers (work_order_id) WHERE cancelled_at IS NULL;

CREATE TABLE sla_policies (
    tenant                 TEXT PRIMARY KEY,
    reminder_at            DOUBLE PRECISION NOT NULL,
    supervise_after        TEXT NOT NULL,
    review_required        BOOLEAN NOT NULL,
    max_extensions         INTEGER NOT NULL,
    max_extension_days     INTEGER NOT NULL,
    max_reopens            INTEGER NOT NULL,
    lift_after_returns     INTEGER NOT NULL,
    allow_pause            BOOLEAN NOT NULL,
    restart_on_redispatch  BOOLEAN NOT NULL,
    report_in_within       TEXT NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE sla_rules (
    tenant          TEXT NOT NULL,
    category        TEXT NOT NULL,
    urgency         TEXT NOT NULL,
    sign_for        TEXT NOT NULL,
    first_response  TEXT NOT NULL,
    resolve         TEXT NOT NULL,
    PRIMARY KEY (tenant, category, urgency)
);

-- The tenant's overrides of the national arrangements.
CREATE TABLE calendar_days (
    tenant  TEXT NOT NULL,
    day     DATE NOT NULL,
    -- holiday | workday | default
    kind    TEXT NOT NULL,
    note    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, day)
);

CREATE TABLE calendar_shifts (
    tenant  TEXT PRIMARY KEY,
    -- e.g. {"09:00-12:00","13:00-17:00"}
    shifts  TEXT[] NOT NULL
);
