-- The host's queries: the as-aired log and model usage (a post's status: db/posts.py, posts.sql).
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
