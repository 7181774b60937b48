-- Memory of posts: embeddings by meaning (db/memory.py). One query per model, so each cast
-- matches that model's partial HNSW index and a search never compares two models.

-- name: insert_embedding(post_id, model, embedding)!
INSERT INTO post_embeddings (post_id, model, embedding)
VALUES (:post_id, :model, (:embedding)::vector)
ON CONFLICT (post_id, model) DO UPDATE SET embedding = EXCLUDED.embedding, created_at = now();

-- name: nearest_posts_minilm(query, k, statuses)
-- Nearest posts by meaning among embeddings of the MiniLM model; the cast matches the index.
SELECT p.id, p.text, p.created_at, a.nickname AS author, p.status,
       e.embedding::vector(384) <=> (:query)::vector(384) AS distance
FROM post_embeddings e
JOIN posts p ON p.id = e.post_id
JOIN people a ON a.id = p.author_id
WHERE e.model = 'all-MiniLM-L6-v2' AND p.status = ANY(:statuses)
ORDER BY e.embedding::vector(384) <=> (:query)::vector(384)
LIMIT :k;

-- name: nearest_posts_use(query, k, statuses)
-- The same for the local multilingual model (USE multilingual v3, 512 dimensions).
SELECT p.id, p.text, p.created_at, a.nickname AS author, p.status,
       e.embedding::vector(512) <=> (:query)::vector(512) AS distance
FROM post_embeddings e
JOIN posts p ON p.id = e.post_id
JOIN people a ON a.id = p.author_id
WHERE e.model = 'use-multilingual-v3' AND p.status = ANY(:statuses)
ORDER BY e.embedding::vector(512) <=> (:query)::vector(512)
LIMIT :k;

-- name: nearest_posts_openai_small(query, k, statuses)
-- The same for OpenAI's text-embedding-3-small.
SELECT p.id, p.text, p.created_at, a.nickname AS author, p.status,
       e.embedding::vector(1536) <=> (:query)::vector(1536) AS distance
FROM post_embeddings e
JOIN posts p ON p.id = e.post_id
JOIN people a ON a.id = p.author_id
WHERE e.model = 'text-embedding-3-small' AND p.status = ANY(:statuses)
ORDER BY e.embedding::vector(1536) <=> (:query)::vector(1536)
LIMIT :k;

-- name: posts_to_embed(model, n)
-- Posts with no embedding of this model yet, oldest first (rejected posts are never recalled).
SELECT p.id, p.text
FROM posts p
WHERE p.status <> 'rejected'
  AND NOT EXISTS (SELECT 1 FROM post_embeddings e WHERE e.post_id = p.id AND e.model = :model)
ORDER BY p.created_at
LIMIT :n;

-- name: embedding_lag(model)^
-- How many posts wait for an embedding of this model, and the age in seconds of the oldest.
SELECT count(*), coalesce(extract(epoch FROM now() - min(p.created_at)), 0)::float8
FROM posts p
WHERE p.status <> 'rejected'
  AND NOT EXISTS (SELECT 1 FROM post_embeddings e WHERE e.post_id = p.id AND e.model = :model);
