-- Evaluation's own copy of the facts it judges, one row per ticket. Times
-- are moved only forward by the events' own order (intake's fields once,
-- dispatch's as a snapshot of the highest order version), so events in any
-- order end in the same row.
CREATE TABLE IF NOT EXISTS ticket_facts (
    ticket_id             UUID PRIMARY KEY,
    tenant                TEXT COLLATE "C" NOT NULL,
    tracking_no           TEXT NOT NULL DEFAULT '',
    -- Opaque account id of the submitter (JWT `sub`): who may rate as the citizen.
    submitter_sub         TEXT NOT NULL DEFAULT '',
    received_at           TIMESTAMPTZ,
    channel               TEXT NOT NULL DEFAULT '',
    nature                TEXT NOT NULL DEFAULT '',
    category              TEXT NOT NULL DEFAULT '',
    category_name         TEXT NOT NULL DEFAULT '',
    category_path         JSONB NOT NULL DEFAULT '[]',
    category_path_names   JSONB NOT NULL DEFAULT '[]',
    received_region       TEXT NOT NULL DEFAULT '',
    -- Dispatch's snapshot; order_version -1 = none yet.
    order_version         INTEGER NOT NULL DEFAULT -1,
    work_order_id         UUID,
    order_region          TEXT NOT NULL DEFAULT '',
    status                TEXT NOT NULL DEFAULT '',
    unit_id               TEXT NOT NULL DEFAULT '',
    unit_name             TEXT NOT NULL DEFAULT '',
    dispatched_at         TIMESTAMPTZ,
    clock_started_at      TIMESTAMPTZ,
    sign_due              TIMESTAMPTZ,
    respond_due           TIMESTAMPTZ,
    resolve_due           TIMESTAMPTZ,
    signed_at             TIMESTAMPTZ,
    responded_at          TIMESTAMPTZ,
    resolved_at           TIMESTAMPTZ,
    closed_at             TIMESTAMPTZ,
    returns               INTEGER NOT NULL DEFAULT 0,
    extensions            INTEGER NOT NULL DEFAULT 0,
    reopens               INTEGER NOT NULL DEFAULT 0,
    resolve_work_minutes  INTEGER NOT NULL DEFAULT 0,
    -- Intake's merge / unmerge and withdrawal, latest by event time.
    merged                BOOLEAN NOT NULL DEFAULT false,
    merge_changed_at      TIMESTAMPTZ,
    withdrawn             BOOLEAN NOT NULL DEFAULT false,
    -- A reviewer's exclusion from assessment.
    excluded_reason       TEXT,
    excluded_note         TEXT NOT NULL DEFAULT '',
    excluded_by           TEXT NOT NULL DEFAULT '',
    excluded_at           TIMESTAMPTZ,
    -- The latest round's outcome (kept here so the row alone gives its counts).
    verdict_resolved      BOOLEAN,
    verdict_satisfaction  TEXT,
    unreachable           BOOLEAN NOT NULL DEFAULT false,
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ticket_facts_tracking ON ticket_facts (tracking_no);
CREATE INDEX IF NOT EXISTS ticket_facts_tenant_received ON ticket_facts (tenant, received_at);

-- Every event applied to a ticket, by its id: the ticket's step log.
CREATE TABLE IF NOT EXISTS ticket_steps (
    event_id    UUID PRIMARY KEY,
    ticket_id   UUID NOT NULL,
    step        TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    unit_id     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ticket_steps_ticket ON ticket_steps (ticket_id, at);

-- Additive day rollups, kept in the transaction that changes a facts row
-- (its old contribution subtracted, its new one added).
CREATE TABLE IF NOT EXISTS rollup_day (
    tenant                TEXT COLLATE "C" NOT NULL,
    dim                   TEXT NOT NULL,
    day                   DATE NOT NULL,
    key                   TEXT COLLATE "C" NOT NULL,
    received              BIGINT NOT NULL DEFAULT 0,
    excluded              BIGINT NOT NULL DEFAULT 0,
    merged                BIGINT NOT NULL DEFAULT 0,
    withdrawn             BIGINT NOT NULL DEFAULT 0,
    assessed              BIGINT NOT NULL DEFAULT 0,
    dispatched            BIGINT NOT NULL DEFAULT 0,
    signed_on_time        BIGINT NOT NULL DEFAULT 0,
    responded             BIGINT NOT NULL DEFAULT 0,
    responded_on_time     BIGINT NOT NULL DEFAULT 0,
    resolved              BIGINT NOT NULL DEFAULT 0,
    resolved_on_time      BIGINT NOT NULL DEFAULT 0,
    resolved_same_day     BIGINT NOT NULL DEFAULT 0,
    closed                BIGINT NOT NULL DEFAULT 0,
    returned              BIGINT NOT NULL DEFAULT 0,
    reopened              BIGINT NOT NULL DEFAULT 0,
    callbacks_valid       BIGINT NOT NULL DEFAULT 0,
    satisfied             BIGINT NOT NULL DEFAULT 0,
    basic                 BIGINT NOT NULL DEFAULT 0,
    unsatisfied           BIGINT NOT NULL DEFAULT 0,
    callback_resolved     BIGINT NOT NULL DEFAULT 0,
    unreachable           BIGINT NOT NULL DEFAULT 0,
    resolve_work_minutes  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (dim, tenant, day, key)
);

-- Names of units and categories as the events last gave them.
CREATE TABLE IF NOT EXISTS key_names (
    tenant  TEXT COLLATE "C" NOT NULL,
    dim     TEXT NOT NULL,
    key     TEXT NOT NULL,
    name    TEXT NOT NULL,
    PRIMARY KEY (tenant, dim, key)
);

-- Formulas per tenant, each in force from its day; never edited in place.
CREATE TABLE IF NOT EXISTS formulas (
    tenant          TEXT COLLATE "C" NOT NULL,
    effective_from  DATE NOT NULL,
    definition      JSONB NOT NULL,
    note            TEXT NOT NULL DEFAULT '',
    created_by      TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, effective_from)
);

CREATE TABLE IF NOT EXISTS callback_policies (
    tenant      TEXT PRIMARY KEY,
    definition  JSONB NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per ticket and round (重办 starts the next); one verdict each.
CREATE TABLE IF NOT EXISTS callbacks (
    ticket_id         UUID NOT NULL,
    round             INTEGER NOT NULL,
    tenant            TEXT COLLATE "C" NOT NULL,
    region_code       TEXT COLLATE "C" NOT NULL,
    unit_id           TEXT NOT NULL DEFAULT '',
    status            TEXT NOT NULL DEFAULT 'open',
    opened_at         TIMESTAMPTZ NOT NULL,
    due_at            TIMESTAMPTZ NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    resolved          BOOLEAN,
    satisfaction      TEXT,
    comment           TEXT NOT NULL DEFAULT '',
    method            TEXT,
    by_sub            TEXT,
    by_role           TEXT,
    answered_at       TIMESTAMPTZ,
    reopen_requested  BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (ticket_id, round)
);
CREATE INDEX IF NOT EXISTS callbacks_open ON callbacks (tenant, status, due_at);

CREATE TABLE IF NOT EXISTS callback_attempts (
    id         BIGSERIAL PRIMARY KEY,
    ticket_id  UUID NOT NULL,
    round      INTEGER NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    outcome    TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    by_sub     TEXT NOT NULL,
    by_role    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS callback_attempts_round ON callback_attempts (ticket_id, round);
