-- A link that carries a one-time token (the SMS invitation to rate a
-- callback): the body holds `{link}` where it goes. It is put into the
-- message only at the moment of sending, never shown by the API, and
-- cleared once the notification is sent or has failed for good.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS link TEXT;
