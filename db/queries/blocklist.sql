-- The producers' blocklist (matched by api/moderation.py).

-- name: blocklist_terms()
SELECT term, created_at FROM blocklist ORDER BY term;

-- name: add_blocklist_term(term, added_by)!
INSERT INTO blocklist (term, added_by) VALUES (:term, :added_by) ON CONFLICT DO NOTHING;

-- name: remove_blocklist_term(term)!
DELETE FROM blocklist WHERE term = :term;
