-- Listeners (guests by nickname) and staff (producers, admins by username and argon2 hash).

-- name: insert_listener(nickname)^
INSERT INTO people (nickname) VALUES (:nickname) RETURNING id, nickname, role;

-- name: insert_staff(nickname, role, password_hash)^
INSERT INTO people (nickname, role, password_hash)
VALUES (:nickname, :role, :password_hash)
ON CONFLICT DO NOTHING
RETURNING id, nickname, role;

-- name: person_by_id(id)^
SELECT id, nickname, role, banned_at FROM people WHERE id = :id;

-- name: staff_by_name(name)^
SELECT id, nickname, role, password_hash, banned_at
FROM people
WHERE lower(nickname) = lower(:name) AND role <> 'listener';

-- name: set_password_hash(id, password_hash)!
UPDATE people SET password_hash = :password_hash WHERE id = :id;

-- name: ban_listener(id, reason)^
-- Staff cannot be banned; banning twice keeps the first time.
UPDATE people SET banned_at = coalesce(banned_at, now()), ban_reason = :reason
WHERE id = :id AND role = 'listener'
RETURNING id, banned_at;

-- name: unban_listener(id)^
UPDATE people SET banned_at = NULL, ban_reason = NULL
WHERE id = :id AND role = 'listener'
RETURNING id;
