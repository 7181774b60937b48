DROP TABLE IF EXISTS model_usage, station_state, post_embeddings, posts, utterances, people;
