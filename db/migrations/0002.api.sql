-- The companion API: handing posts to the host, the producers' blocklist, bans and reviews.
-- depends: 0001.initial

-- When the post was handed to the host through the Redis stream. A queued post with no
-- enqueued_at is still owed to the host: the API's relay hands it over when Redis is back.
ALTER TABLE posts ADD COLUMN enqueued_at timestamptz;
-- The producer who last approved, hid or rejected the post (NULL: moderation did it).
ALTER TABLE posts ADD COLUMN reviewed_by uuid REFERENCES people (id);
CREATE INDEX posts_owed_to_host ON posts (created_at)
    WHERE status = 'queued' AND enqueued_at IS NULL;
CREATE INDEX posts_author_created ON posts (author_id, created_at DESC);
-- Posts already queued before this migration were handed over by whatever ran then.
UPDATE posts SET enqueued_at = created_at WHERE status = 'queued';

ALTER TABLE people ADD COLUMN ban_reason text;

-- Words and phrases producers refuse on air; stored normalised by api/moderation.py, which
-- matches them case-insensitively.
CREATE TABLE blocklist (
    term        text PRIMARY KEY CHECK (char_length(term) BETWEEN 1 AND 100),
    added_by    uuid REFERENCES people (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
