-- The as-aired log, read back for producers (the host writes it: host.sql).

-- name: aired_between(start, stop, kind, after_at, after_id, n)
-- One page of the utterances, caller turns and music items in a time range (or those of one
-- kind), oldest first: at most n rows after the keyset (after_at, after_id), the started_at and
-- id of the page before's last row (the first page passes start and the least bigint).
SELECT u.id, u.kind, u.speaker, a.nickname AS person, u.text, u.segment, u.mode,
       u.started_at, u.ended_at, u.interrupted, u.duration_ms, u.title, u.artist, u.file
FROM utterances u
LEFT JOIN people a ON a.id = u.person_id
WHERE u.started_at >= :start AND u.started_at < :stop
  AND (u.started_at, u.id) > (:after_at::timestamptz, :after_id::bigint)
  AND (:kind::text IS NULL OR u.kind = :kind)
ORDER BY u.started_at, u.id
LIMIT :n;
