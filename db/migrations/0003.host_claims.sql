-- The host claims posts from Postgres; the as-aired log takes client-made refs and music.
-- depends: 0002.api

-- A post the host holds: which host (consumer and instance) and until when. A host renews its
-- claims every few seconds; a killed host's claims expire and the next host takes them.
-- enqueued_at now means "first claimed by the host" (handed to the host).
ALTER TABLE posts ADD COLUMN claimed_by text;
ALTER TABLE posts ADD COLUMN claimed_until timestamptz;

-- The host names each row before writing it, so a row written late (spooled while Postgres
-- was down) or twice (a retry whose first answer was lost) is still one row, and a post can
-- point at an utterance that is not written yet.
ALTER TABLE utterances ADD COLUMN ref uuid NOT NULL DEFAULT gen_random_uuid();
CREATE UNIQUE INDEX utterances_ref ON utterances (ref);

-- Music, jingles and beds in the as-aired log (a music-use report: start, duration, title,
-- artist, file).
ALTER TABLE utterances DROP CONSTRAINT utterances_kind_check;
ALTER TABLE utterances ADD CONSTRAINT utterances_kind_check
    CHECK (kind IN ('host', 'caller', 'music'));
ALTER TABLE utterances ADD COLUMN title text;
ALTER TABLE utterances ADD COLUMN artist text;
ALTER TABLE utterances ADD COLUMN file text;
