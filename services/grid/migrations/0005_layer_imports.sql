-- Streamed layer imports and their progress, readable from any replica.
CREATE TABLE layer_imports (
    tenant          TEXT NOT NULL,
    id              UUID NOT NULL,
    started_by      TEXT NOT NULL,
    -- receiving | storing | done | failed
    status          TEXT NOT NULL,
    bytes_received  BIGINT NOT NULL DEFAULT 0,
    total_bytes     BIGINT NOT NULL DEFAULT 0,
    features_read   INTEGER NOT NULL DEFAULT 0,
    created         INTEGER NOT NULL DEFAULT 0,
    updated         INTEGER NOT NULL DEFAULT 0,
    problems        TEXT[] NOT NULL DEFAULT '{}',
    started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    PRIMARY KEY (tenant, id)
);
