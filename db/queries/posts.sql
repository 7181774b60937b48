-- Listener posts and their one status machine (db/posts.py owns both): created queued or
-- rejected, reviewed by producers, hidden when the author is banned, claimed by a host, aired
-- once. Every status change is a query here, called only from db/posts.py.

-- name: insert_post(author_id, text, idempotency_key, status, reason)^
-- A retried request with the same Idempotency-Key inserts nothing (and returns no row).
INSERT INTO posts (author_id, text, idempotency_key, status, reason)
VALUES (:author_id, :text, :idempotency_key, :status, :reason)
ON CONFLICT (author_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING id, status, reason, created_at, text;

-- name: post_by_idempotency_key(author_id, idempotency_key)^
SELECT id, status, reason, created_at, text
FROM posts
WHERE author_id = :author_id AND idempotency_key = :idempotency_key;

-- name: posts_of(author_id, n)
-- A listener's own posts, newest first.
SELECT id, text, status, reason, created_at, aired_at
FROM posts
WHERE author_id = :author_id
ORDER BY created_at DESC
LIMIT :n;

-- name: list_posts(status, before, n)
-- Producers' view: every post (or those of one status), newest first, paged by created_at.
SELECT p.id, p.text, p.status, p.reason, p.created_at, p.aired_at, p.author_id,
       a.nickname AS author, a.banned_at IS NOT NULL AS author_banned, p.enqueued_at
FROM posts p
JOIN people a ON a.id = p.author_id
WHERE (:status::text IS NULL OR p.status = :status)
  AND (:before::timestamptz IS NULL OR p.created_at < :before)
ORDER BY p.created_at DESC
LIMIT :n;

-- name: review_post(id, status, reason, reviewed_by, from_statuses)^
-- A producer's decision; only from the statuses the action allows (aired is final). Back to
-- queued means waiting for the host again, claimed by nobody.
UPDATE posts
SET status = :status, reason = :reason, reviewed_by = :reviewed_by, updated_at = now(),
    enqueued_at = CASE WHEN :status = 'queued' THEN NULL ELSE enqueued_at END,
    claimed_by = NULL, claimed_until = NULL
WHERE id = :id AND status = ANY(:from_statuses)
RETURNING id, author_id, status, reason;

-- name: post_status(id)^
SELECT status FROM posts WHERE id = :id;

-- name: hide_queued_posts_of(author_id, reason)
-- A banned listener's waiting posts never air.
UPDATE posts SET status = 'hidden', reason = :reason, updated_at = now()
WHERE author_id = :author_id AND status = 'queued'
RETURNING id;

-- name: posts_by_status()
SELECT status, count(*) FROM posts GROUP BY status;

-- name: owed_to_host()^
-- Queued posts the host has not claimed yet.
SELECT count(*) FROM posts WHERE status = 'queued' AND enqueued_at IS NULL;

-- name: held_by_host()^
-- Queued posts a host holds now (claimed, lease running): read soon.
SELECT count(*) FROM posts WHERE status = 'queued' AND claimed_until > now();

-- The host's side: claiming posts and airing each exactly once.

-- name: claim_posts(claimer, n, lease_seconds, held)
-- The next queued posts nobody holds (or whose holder's lease ran out), oldest first, claimed
-- for this host; SKIP LOCKED so two hosts claiming at once never take the same post.
WITH next AS (
    SELECT id FROM posts
    WHERE status = 'queued'
      AND (claimed_until IS NULL OR claimed_until < now() OR claimed_by = :claimer)
      AND NOT (id = ANY(:held::uuid[]))
    ORDER BY created_at, id
    LIMIT :n
    FOR UPDATE SKIP LOCKED
)
UPDATE posts p
SET claimed_by = :claimer,
    claimed_until = now() + make_interval(secs => :lease_seconds),
    enqueued_at = coalesce(p.enqueued_at, now())
FROM next, people a
WHERE p.id = next.id AND a.id = p.author_id
RETURNING p.id, p.text, p.author_id, a.nickname AS author, p.created_at;

-- name: renew_claims(claimer, ids, lease_seconds)
-- Extend this host's claims; a post missing from the answer was aired, hidden, rejected or
-- taken by another host after our lease ran out: drop it.
UPDATE posts
SET claimed_until = now() + make_interval(secs => :lease_seconds)
WHERE id = ANY(:ids::uuid[]) AND status = 'queued' AND claimed_by = :claimer
RETURNING id;

-- name: release_claims(claimer, keep)!
-- The host is leaving: what it held is free for the next host at once, except `keep` (posts
-- that aired but whose mark is not written yet: their leases run out instead).
UPDATE posts SET claimed_by = NULL, claimed_until = NULL
WHERE claimed_by = :claimer AND status = 'queued' AND NOT (id = ANY(:keep::uuid[]));

-- name: mark_post_aired(id, ref, aired_at)^
-- Only a queued post turns aired, so a post delivered twice airs once.
UPDATE posts
SET status = 'aired', aired_at = :aired_at, updated_at = now(), claimed_until = NULL,
    utterance_id = (SELECT id FROM utterances WHERE ref = :ref)
WHERE id = :id AND status = 'queued'
RETURNING id, author_id;
