-- Dispatch owns units, the category -> unit routing table (the full
-- responsibility list comes later) and work orders with their timeline.

CREATE TABLE units (
    tenant       TEXT NOT NULL,
    id           TEXT NOT NULL,
    name         TEXT NOT NULL,
    -- department | street | community | utility
    kind         TEXT NOT NULL,
    region_code  TEXT NOT NULL,
    parent_id    TEXT,
    active       BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE category_routes (
    tenant    TEXT NOT NULL,
    category  TEXT NOT NULL,
    unit_id   TEXT NOT NULL,
    PRIMARY KEY (tenant, category),
    FOREIGN KEY (tenant, unit_id) REFERENCES units (tenant, id)
);

CREATE TABLE work_orders (
    id             UUID PRIMARY KEY,
    -- One work order per ticket, whatever the bus does.
    ticket_id      UUID NOT NULL UNIQUE,
    tenant         TEXT NOT NULL,
    region_code    TEXT NOT NULL,
    tracking_no    TEXT NOT NULL,
    category       TEXT NOT NULL,
    category_name  TEXT NOT NULL,
    -- triage | dispatched
    status         TEXT NOT NULL,
    unit_id        TEXT,
    unit_name      TEXT,
    submitter_sub  TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX work_orders_unit_status ON work_orders (tenant, unit_id, status, created_at DESC);
CREATE INDEX work_orders_region ON work_orders (region_code text_pattern_ops, created_at DESC);

CREATE TABLE work_order_events (
    id             BIGSERIAL PRIMARY KEY,
    work_order_id  UUID NOT NULL REFERENCES work_orders (id),
    tenant         TEXT NOT NULL,
    at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    event          TEXT NOT NULL,
    actor_role     TEXT NOT NULL,
    unit_id        TEXT,
    unit_name      TEXT,
    note           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX work_order_events_order ON work_order_events (work_order_id, at);
