-- One-time announcements made once per database, e.g. the units of every
-- open work order made before `ticket.units` existed.
CREATE TABLE backfills (
    name     TEXT PRIMARY KEY,
    done_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    rows     BIGINT NOT NULL
);
