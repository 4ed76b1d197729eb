//! The outbox and inbox tables every event-using service carries in its own
//! database. Add [`bus_tables`] to the service's migrator.

use jiesu_db::SqlMigration;

pub fn bus_tables() -> SqlMigration {
    SqlMigration {
        name: "m20261122_000000_bus_outbox_inbox",
        sql: r#"
CREATE TABLE bus_outbox (
    id            BIGSERIAL PRIMARY KEY,
    event_id      UUID NOT NULL UNIQUE,
    subject       TEXT NOT NULL,
    event         TEXT NOT NULL,
    tenant        TEXT NOT NULL,
    payload       BYTEA NOT NULL,
    traceparent   TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at  TIMESTAMPTZ,
    attempts      INT NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX bus_outbox_pending ON bus_outbox (id) WHERE published_at IS NULL;
CREATE INDEX bus_outbox_published ON bus_outbox (published_at) WHERE published_at IS NOT NULL;

CREATE TABLE bus_inbox (
    consumer    TEXT NOT NULL,
    event_id    UUID NOT NULL,
    subject     TEXT NOT NULL,
    handled_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX bus_inbox_handled_at ON bus_inbox (handled_at);

-- Attempts at events that needed more than one delivery, counted only while
-- the database answered: an outage never pushes an event to dead letters.
CREATE TABLE bus_attempts (
    consumer    TEXT NOT NULL,
    event_id    UUID NOT NULL,
    attempts    INT NOT NULL,
    last_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
"#,
    }
}

/// The highest sequence JetStream acknowledged per stream and the stream's
/// creation time, so the relay can tell when a stream lost events it had
/// accepted (see `outbox`).
pub fn bus_stream_marks() -> SqlMigration {
    SqlMigration {
        name: "m20261202_000000_bus_stream_marks",
        sql: r#"
CREATE TABLE bus_stream_marks (
    stream          TEXT PRIMARY KEY,
    last_seq        BIGINT NOT NULL,
    -- When JetStream says the stream was created: another value means the
    -- stream was made anew and holds none of what was published before.
    stream_created  TEXT,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
"#,
    }
}
