DROP INDEX IF EXISTS post_embeddings_use;
