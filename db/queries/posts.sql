-- name: insert_listener^
INSERT INTO people (nickname) VALUES (:nickname) RETURNING id, nickname, role;

-- name: insert_post^
INSERT INTO posts (author_id, text, idempotency_key)
VALUES (:author_id, :text, :idempotency_key)
RETURNING id, status, created_at;

-- name: insert_embedding!
INSERT INTO post_embeddings (post_id, model, embedding)
VALUES (:post_id, :model, :embedding)
ON CONFLICT (post_id, model) DO UPDATE SET embedding = EXCLUDED.embedding;

-- name: nearest_posts_minilm
-- Nearest posts by meaning among embeddings of the MiniLM model; the cast matches the index.
SELECT p.id, p.text, p.created_at, a.nickname AS author,
       e.embedding::vector(384) <=> (:query)::vector(384) AS distance
FROM post_embeddings e
JOIN posts p ON p.id = e.post_id
JOIN people a ON a.id = p.author_id
WHERE e.model = 'all-MiniLM-L6-v2' AND p.status IN ('queued', 'aired')
ORDER BY e.embedding::vector(384) <=> (:query)::vector(384)
LIMIT :k;
