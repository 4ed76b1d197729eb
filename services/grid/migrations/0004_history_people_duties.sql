-- Grid history: every version of every grid with the time it was valid,
-- so a lookup "as of" a moment answers with the grids of that moment.
-- The bounding box narrows an as-of lookup before the exact test.

CREATE TABLE grid_history (
    tenant          TEXT NOT NULL,
    code            TEXT NOT NULL,
    version         INTEGER NOT NULL,
    name            TEXT NOT NULL,
    kind            TEXT NOT NULL,
    community_code  TEXT NOT NULL,
    geometry        TEXT NOT NULL,
    min_lon         DOUBLE PRECISION,
    min_lat         DOUBLE PRECISION,
    max_lon         DOUBLE PRECISION,
    max_lat         DOUBLE PRECISION,
    valid_from      TIMESTAMPTZ NOT NULL,
    valid_to        TIMESTAMPTZ,
    -- import | split | merge
    cause           TEXT NOT NULL DEFAULT 'import',
    predecessors    TEXT[] NOT NULL DEFAULT '{}',
    -- replaced | split | merged (NULL while current)
    ended_by        TEXT,
    successors      TEXT[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant, code, version)
);
CREATE INDEX grid_history_valid ON grid_history (tenant, valid_from);
INSERT INTO grid_history (tenant, code, version, name, kind, community_code, geometry, valid_from)
    SELECT tenant, code, version, name, kind, community_code, geometry, updated_at FROM grids;

-- Professional grids (police 警格...) paired with basic grids, many to many.
CREATE TABLE grid_pairs (
    tenant             TEXT NOT NULL,
    professional_code  TEXT NOT NULL,
    basic_code         TEXT NOT NULL,
    PRIMARY KEY (tenant, professional_code, basic_code)
);
CREATE INDEX grid_pairs_basic ON grid_pairs (tenant, basic_code);

-- The building registry (门牌): addresses of buildings, not of people.
CREATE TABLE buildings (
    tenant        TEXT NOT NULL,
    code          TEXT NOT NULL,
    address       TEXT NOT NULL,
    -- address without spaces, full-width digits made ASCII
    address_norm  TEXT NOT NULL,
    lat           DOUBLE PRECISION NOT NULL,
    lon           DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (tenant, code)
);

CREATE TABLE workers (
    tenant      TEXT NOT NULL,
    id          UUID NOT NULL,
    account     TEXT NOT NULL,
    name        TEXT NOT NULL,
    -- encrypted (personal data)
    phone_enc   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    occupation  TEXT NOT NULL DEFAULT '',
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    stars       SMALLINT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, account)
);

CREATE TABLE assignments (
    tenant       TEXT NOT NULL,
    worker_id    UUID NOT NULL,
    grid_code    TEXT NOT NULL,
    assigned_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, worker_id, grid_code)
);
CREATE INDEX assignments_grid ON assignments (tenant, grid_code);

CREATE TABLE worker_ratings (
    tenant     TEXT NOT NULL,
    worker_id  UUID NOT NULL,
    stars      SMALLINT NOT NULL,
    reason     TEXT NOT NULL,
    rated_by   TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE households (
    tenant          TEXT NOT NULL,
    id              UUID NOT NULL,
    grid_code       TEXT NOT NULL,
    building_code   TEXT NOT NULL DEFAULT '',
    room_enc        TEXT NOT NULL,
    head_name_enc   TEXT NOT NULL,
    phone_enc       TEXT NOT NULL,
    members         INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX households_grid ON households (tenant, grid_code);

CREATE TABLE key_persons (
    tenant          TEXT NOT NULL,
    id              UUID NOT NULL,
    grid_code       TEXT NOT NULL,
    household_id    UUID,
    category        TEXT NOT NULL,
    name_enc        TEXT NOT NULL,
    id_number_enc   TEXT NOT NULL,
    phone_enc       TEXT NOT NULL,
    address_enc     TEXT NOT NULL,
    note_enc        TEXT NOT NULL,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX key_persons_grid ON key_persons (tenant, grid_code);

-- Every read of personal data: who, when, what, why.
CREATE TABLE pii_reads (
    id           BIGSERIAL PRIMARY KEY,
    tenant       TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    reader       TEXT NOT NULL,
    roles        TEXT[] NOT NULL,
    what         TEXT NOT NULL,
    subject_ids  TEXT[] NOT NULL,
    purpose      TEXT NOT NULL
);
CREATE INDEX pii_reads_tenant ON pii_reads (tenant, at);

CREATE TABLE duty_rules (
    tenant      TEXT NOT NULL,
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    target      TEXT NOT NULL,
    categories  TEXT[] NOT NULL DEFAULT '{}',
    every       TEXT NOT NULL,
    active      BOOLEAN NOT NULL DEFAULT TRUE,
    PRIMARY KEY (tenant, code)
);

CREATE TABLE duty_tasks (
    tenant          TEXT NOT NULL,
    id              UUID NOT NULL,
    rule_code       TEXT NOT NULL,
    period          TEXT NOT NULL,
    grid_code       TEXT NOT NULL,
    community_code  TEXT NOT NULL,
    target_kind     TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    target_label    TEXT NOT NULL,
    due_at          TIMESTAMPTZ NOT NULL,
    done_at         TIMESTAMPTZ,
    done_by         TEXT,
    lat             DOUBLE PRECISION,
    lon             DOUBLE PRECISION,
    distance_m      DOUBLE PRECISION,
    note            TEXT,
    photo           BYTEA,
    photo_type      TEXT,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, rule_code, period, target_id)
);
CREATE INDEX duty_tasks_grid ON duty_tasks (tenant, grid_code, period);

CREATE TABLE grid_events (
    tenant           TEXT NOT NULL,
    id               UUID NOT NULL,
    grid_code        TEXT NOT NULL,
    community_code   TEXT NOT NULL,
    reporter         TEXT NOT NULL,
    idempotency_key  TEXT,
    content          TEXT NOT NULL,
    category         TEXT NOT NULL DEFAULT '',
    lat              DOUBLE PRECISION NOT NULL,
    lon              DOUBLE PRECISION NOT NULL,
    status           TEXT NOT NULL,
    result           TEXT NOT NULL DEFAULT '',
    level            TEXT NOT NULL DEFAULT '',
    reason           TEXT NOT NULL DEFAULT '',
    ticket_id        TEXT NOT NULL DEFAULT '',
    tracking_no      TEXT NOT NULL DEFAULT '',
    reported_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    closed_at        TIMESTAMPTZ,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, reporter, idempotency_key)
);
CREATE INDEX grid_events_reported ON grid_events (tenant, reported_at);

CREATE TABLE broadcasts (
    tenant        TEXT NOT NULL,
    id            UUID NOT NULL,
    kind          TEXT NOT NULL,
    title         TEXT NOT NULL,
    body          TEXT NOT NULL,
    grid_codes    TEXT[] NOT NULL,
    requested_by  TEXT NOT NULL,
    at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, id)
);
