-- The host's queries: the as-aired log, claiming and airing posts exactly once, model usage.
-- Every write carries the row's `ref` (made by the host) so a write repeated after a lost
-- answer, or replayed from the host's spool after an outage, changes nothing the second time.

-- name: record_host_utterance(ref, text, segment, mode, started_at, ended_at, interrupted)!
-- One host utterance, written when it has finished (or was cut).
INSERT INTO utterances (ref, kind, speaker, text, segment, mode, started_at, ended_at,
                        interrupted, duration_ms)
VALUES (:ref, 'host', 'host', :text, :segment, :mode, :started_at, :ended_at, :interrupted,
        (extract(epoch FROM (:ended_at::timestamptz - :started_at::timestamptz)) * 1000)::integer)
ON CONFLICT (ref) DO NOTHING;

-- name: record_caller_turn(ref, identity, text, segment, started_at, ended_at)!
-- A caller's push-to-talk turn. The identity is the listener's id when the API issued the token.
INSERT INTO utterances (ref, kind, speaker, person_id, text, segment, started_at, ended_at,
                        duration_ms)
VALUES (:ref, 'caller', :identity,
        (SELECT id FROM people WHERE id::text = :identity),
        :text, :segment, :started_at, :ended_at,
        (extract(epoch FROM (:ended_at::timestamptz - :started_at::timestamptz)) * 1000)::integer)
ON CONFLICT (ref) DO NOTHING;

-- name: record_music(ref, file, title, artist, segment, started_at, duration_ms)!
-- A music item (track, jingle, bed) as it went on air.
INSERT INTO utterances (ref, kind, speaker, text, segment, started_at, ended_at, duration_ms,
                        file, title, artist)
VALUES (:ref, 'music', 'music', coalesce(:title, ''), :segment, :started_at,
        :started_at::timestamptz + make_interval(secs => :duration_ms / 1000.0), :duration_ms,
        :file, :title, :artist)
ON CONFLICT (ref) DO NOTHING;

-- name: set_utterance_text(ref, text)!
UPDATE utterances SET text = :text WHERE ref = :ref;

-- UNTIL THE MERGE ONLY: the four post queries below now live in posts.sql, owned by db/posts.py
-- (claim, renew_claims, release_claims, mark_aired). agent/aired.py still calls them from here;
-- delete them when the host switches to db/posts.py.

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

-- name: release_claims(claimer)!
-- The host is leaving: what it held is free for the next host at once.
UPDATE posts SET claimed_by = NULL, claimed_until = NULL
WHERE claimed_by = :claimer AND status = 'queued';

-- name: mark_post_aired(id, ref, aired_at)^
-- Only a queued post turns aired, so a post delivered twice airs once.
UPDATE posts
SET status = 'aired', aired_at = :aired_at, updated_at = now(), claimed_until = NULL,
    utterance_id = (SELECT id FROM utterances WHERE ref = :ref)
WHERE id = :id AND status = 'queued'
RETURNING id, author_id;

-- name: add_model_usage(hour, model, audio_in, audio_out, text_in, text_out)!
INSERT INTO model_usage (hour, model, audio_in_tokens, audio_out_tokens, text_in_tokens,
                         text_out_tokens)
VALUES (:hour, :model, :audio_in, :audio_out, :text_in, :text_out)
ON CONFLICT (hour, model) DO UPDATE SET
    audio_in_tokens = model_usage.audio_in_tokens + EXCLUDED.audio_in_tokens,
    audio_out_tokens = model_usage.audio_out_tokens + EXCLUDED.audio_out_tokens,
    text_in_tokens = model_usage.text_in_tokens + EXCLUDED.text_in_tokens,
    text_out_tokens = model_usage.text_out_tokens + EXCLUDED.text_out_tokens;

-- name: recent_host_lines(n)
-- The host's latest words, newest first, so a restarted host does not repeat itself.
SELECT text FROM utterances
WHERE kind = 'host' AND text <> ''
ORDER BY started_at DESC
LIMIT :n;
