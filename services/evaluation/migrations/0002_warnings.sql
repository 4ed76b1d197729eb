-- Early warnings: rules per tenant, and the warnings they raise. A warning
-- opens once per rule and key (the partial unique index) and stays open
-- until its figure recovers; cleared rows are its history.
CREATE TABLE IF NOT EXISTS warning_rules (
    id           UUID PRIMARY KEY,
    tenant       TEXT COLLATE "C" NOT NULL,
    name         TEXT NOT NULL,
    metric       TEXT NOT NULL,
    dimension    TEXT NOT NULL,
    window_days  INTEGER NOT NULL,
    threshold    DOUBLE PRECISION NOT NULL,
    min_tickets  INTEGER NOT NULL,
    active       BOOLEAN NOT NULL DEFAULT true,
    updated_by   TEXT NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS warning_rules_tenant ON warning_rules (tenant);

CREATE TABLE IF NOT EXISTS warnings (
    id              UUID PRIMARY KEY,
    tenant          TEXT COLLATE "C" NOT NULL,
    rule_id         UUID NOT NULL,
    rule_name       TEXT NOT NULL,
    dimension       TEXT NOT NULL,
    key             TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    metric          TEXT NOT NULL,
    figure          DOUBLE PRECISION NOT NULL,
    threshold       DOUBLE PRECISION NOT NULL,
    base            BIGINT NOT NULL,
    window_from     DATE NOT NULL,
    window_to       DATE NOT NULL,
    status          TEXT NOT NULL DEFAULT 'open',
    opened_at       TIMESTAMPTZ NOT NULL,
    cleared_at      TIMESTAMPTZ,
    cleared_figure  DOUBLE PRECISION,
    last_figure     DOUBLE PRECISION NOT NULL,
    last_checked_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS warnings_one_open ON warnings (rule_id, key) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS warnings_tenant ON warnings (tenant, opened_at);
