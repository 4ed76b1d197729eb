-- A failed import's problems in English too, in the order of `problems`
-- (which holds them in Chinese): each caller reads them in its language.
ALTER TABLE layer_imports ADD COLUMN problems_en TEXT[] NOT NULL DEFAULT '{}';
