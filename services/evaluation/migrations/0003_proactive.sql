-- High-frequency matters (高频诉求) and proactive items (未诉先办).

CREATE TABLE IF NOT EXISTS frequency_policies (
    tenant      TEXT PRIMARY KEY,
    definition  JSONB NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The same category at the same place reaching the threshold in a window:
-- one open matter per category and place (lifted once), closed with its
-- proactive item.
CREATE TABLE IF NOT EXISTS frequent_matters (
    id             UUID PRIMARY KEY,
    tenant         TEXT COLLATE "C" NOT NULL,
    category       TEXT NOT NULL,
    place_level    TEXT NOT NULL,
    place_code     TEXT NOT NULL,
    window_days    INTEGER NOT NULL,
    threshold      INTEGER NOT NULL,
    status         TEXT NOT NULL DEFAULT 'open',
    opened_at      TIMESTAMPTZ NOT NULL,
    closed_at      TIMESTAMPTZ
);
CREATE UNIQUE INDEX IF NOT EXISTS frequent_matters_one_open
    ON frequent_matters (tenant, category, place_code) WHERE status = 'open';

CREATE TABLE IF NOT EXISTS matter_tickets (
    matter_id  UUID NOT NULL,
    ticket_id  UUID NOT NULL,
    added_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (matter_id, ticket_id)
);
CREATE INDEX IF NOT EXISTS matter_tickets_ticket ON matter_tickets (ticket_id);

CREATE TABLE IF NOT EXISTS proactive_items (
    id               UUID PRIMARY KEY,
    tenant           TEXT COLLATE "C" NOT NULL,
    -- frequency | seasonal
    source           TEXT NOT NULL,
    matter_id        UUID UNIQUE,
    -- For seasonal items: the window they prepare for (once per window).
    season_from      DATE,
    category         TEXT NOT NULL,
    category_name    TEXT NOT NULL DEFAULT '',
    place_level      TEXT NOT NULL,
    place_code       TEXT COLLATE "C" NOT NULL,
    title            TEXT NOT NULL,
    detail           TEXT NOT NULL DEFAULT '',
    owner_unit_id    TEXT NOT NULL DEFAULT '',
    owner_unit_name  TEXT NOT NULL DEFAULT '',
    due_date         DATE NOT NULL,
    -- open | in_progress | done | cancelled
    status           TEXT NOT NULL DEFAULT 'open',
    progress         JSONB NOT NULL DEFAULT '[]',
    result           TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL,
    closed_at        TIMESTAMPTZ
);
CREATE UNIQUE INDEX IF NOT EXISTS proactive_items_season
    ON proactive_items (tenant, category, place_code, season_from) WHERE source = 'seasonal';
CREATE INDEX IF NOT EXISTS proactive_items_place ON proactive_items (tenant, place_code);

-- Requests counted before Jiesu (a city's earlier 12345 system), per day,
-- category and region: seasons and last year's figures from day one.
CREATE TABLE IF NOT EXISTS history_counts (
    tenant       TEXT COLLATE "C" NOT NULL,
    day          DATE NOT NULL,
    category     TEXT NOT NULL,
    region_code  TEXT COLLATE "C" NOT NULL,
    count        INTEGER NOT NULL,
    PRIMARY KEY (tenant, day, category, region_code)
);

-- Tickets per category and day: what the windows above count.
CREATE INDEX IF NOT EXISTS ticket_facts_category ON ticket_facts (tenant, category, received_at);

-- The day each tenant's seasons were last scanned.
CREATE TABLE IF NOT EXISTS seasonal_scans (
    tenant  TEXT PRIMARY KEY,
    day     DATE NOT NULL
);
