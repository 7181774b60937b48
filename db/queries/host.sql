-- The host's queries: the as-aired log, airing posts exactly once, model usage, recall.

-- name: record_host_utterance(text, segment, mode, started_at, ended_at, interrupted)^
-- One host utterance, written when it has finished (or was cut); returns its id.
INSERT INTO utterances (kind, speaker, text, segment, mode, started_at, ended_at, interrupted,
                        duration_ms)
VALUES ('host', 'host', :text, :segment, :mode, :started_at, :ended_at, :interrupted,
        (extract(epoch FROM (:ended_at::timestamptz - :started_at::timestamptz)) * 1000)::integer)
RETURNING id;

-- name: record_caller_turn(identity, text, segment, started_at, ended_at)^
-- A caller's push-to-talk turn. The identity is the listener's id when the API issued the token.
INSERT INTO utterances (kind, speaker, person_id, text, segment, started_at, ended_at,
                        duration_ms)
VALUES ('caller', :identity,
        (SELECT id FROM people WHERE id::text = :identity),
        :text, :segment, :started_at, :ended_at,
        (extract(epoch FROM (:ended_at::timestamptz - :started_at::timestamptz)) * 1000)::integer)
RETURNING id;

-- name: set_utterance_text(id, text)!
UPDATE utterances SET text = :text WHERE id = :id;

-- name: queued_post(id)^
-- A post still waiting to air, with its author's nickname; nothing once aired, hidden or rejected.
SELECT p.id, p.text, p.author_id, a.nickname AS author, p.created_at
FROM posts p
JOIN people a ON a.id = p.author_id
WHERE p.id = :id AND p.status = 'queued';

-- name: mark_post_aired(id, utterance_id)^
-- Only a queued post turns aired, so a post delivered twice airs once.
UPDATE posts
SET status = 'aired', aired_at = now(), utterance_id = :utterance_id, updated_at = now()
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
