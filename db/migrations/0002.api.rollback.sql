DROP TABLE IF EXISTS blocklist;
ALTER TABLE people DROP COLUMN IF EXISTS ban_reason;
DROP INDEX IF EXISTS posts_author_created;
DROP INDEX IF EXISTS posts_owed_to_host;
ALTER TABLE posts DROP COLUMN IF EXISTS reviewed_by;
ALTER TABLE posts DROP COLUMN IF EXISTS enqueued_at;
