-- The local embedding model is now Google's USE multilingual v3 (512 dimensions; Japanese and
-- English): its own partial HNSW index, as each model has. Posts are re-embedded by the worker.
CREATE INDEX post_embeddings_use ON post_embeddings
    USING hnsw ((embedding::vector(512)) vector_cosine_ops)
    WHERE model = 'use-multilingual-v3';
