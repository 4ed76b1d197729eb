-- SMS invitations to rate a callback round: one per round, found by the
-- hash of the link's one-time token (this table never holds the token; it
-- travels to notification in callback.invited).
CREATE TABLE IF NOT EXISTS callback_invitations (
    token_hash  BYTEA PRIMARY KEY,
    ticket_id   UUID NOT NULL,
    round       INTEGER NOT NULL,
    tenant      TEXT COLLATE "C" NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    UNIQUE (ticket_id, round)
);
