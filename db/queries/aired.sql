-- The as-aired log, read back for producers (the host writes it: host.sql).

-- name: aired_between(start, stop, kind, n)
-- Every utterance, caller turn and music item in a time range (or those of one kind), oldest
-- first.
SELECT u.id, u.kind, u.speaker, a.nickname AS person, u.text, u.segment, u.mode,
       u.started_at, u.ended_at, u.interrupted, u.duration_ms, u.title, u.artist, u.file
FROM utterances u
LEFT JOIN people a ON a.id = u.person_id
WHERE u.started_at >= :start AND u.started_at < :stop
  AND (:kind::text IS NULL OR u.kind = :kind)
ORDER BY u.started_at, u.id
LIMIT :n;
