-- The local embedding model is now Google's USE multilingual v3 (512 dimensions; Japanese and
-- English): its own partial HNSW index, as each model has. Posts are re-embedded by the worker.
-- depends: 0003.host_claims
--
-- This migration was first numbered 0003 beside 0003.host_claims. A database migrated then has
-- it applied under its old id (yoyo's id is the file's stem), so yoyo runs it once more under
-- this id: IF NOT EXISTS makes that a no-op that only records the new id.
CREATE INDEX IF NOT EXISTS post_embeddings_use ON post_embeddings
    USING hnsw ((embedding::vector(512)) vector_cosine_ops)
    WHERE model = 'use-multilingual-v3';
