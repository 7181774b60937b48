-- radio24 first schema: people, posts, their embeddings, the as-aired log, station state.
-- depends:

CREATE EXTENSION IF NOT EXISTS vector;

-- Listeners (guests, by nickname) and producers/admins (by username + argon2 hash) share one table
-- so every post and every caller turn points at one kind of person.
CREATE TABLE people (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    nickname      text NOT NULL CHECK (char_length(nickname) BETWEEN 1 AND 32),
    role          text NOT NULL DEFAULT 'listener' CHECK (role IN ('listener', 'producer', 'admin')),
    password_hash text,
    banned_at     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (role = 'listener' OR password_hash IS NOT NULL)
);
-- Producer usernames are unique; guest nicknames may repeat.
CREATE UNIQUE INDEX people_staff_name ON people (lower(nickname)) WHERE role <> 'listener';

-- The as-aired log: every host utterance and every caller turn.
CREATE TABLE utterances (
    id            bigserial PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('host', 'caller')),
    speaker       text NOT NULL,
    person_id     uuid REFERENCES people (id),
    text          text NOT NULL DEFAULT '',
    segment       text,
    mode          text CHECK (mode IN ('realtime', 'offline')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    ended_at      timestamptz,
    interrupted   boolean NOT NULL DEFAULT false,
    duration_ms   integer
);
CREATE INDEX utterances_started_at ON utterances (started_at);

CREATE TABLE posts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    author_id       uuid NOT NULL REFERENCES people (id),
    text            text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 500),
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'aired', 'rejected', 'hidden')),
    reason          text,
    idempotency_key text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    aired_at        timestamptz,
    utterance_id    bigint REFERENCES utterances (id),
    CHECK (status <> 'aired' OR aired_at IS NOT NULL)
);
CREATE UNIQUE INDEX posts_idempotency ON posts (author_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX posts_status_created ON posts (status, created_at);

-- One row per (post, model): a search compares only embeddings of the same model.
-- The column is untyped so several models (384 and 1536 dimensions) can live side by side;
-- each model gets its own HNSW index over a cast expression.
CREATE TABLE post_embeddings (
    post_id     uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    model       text NOT NULL,
    embedding   vector NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, model)
);
CREATE INDEX post_embeddings_minilm ON post_embeddings
    USING hnsw ((embedding::vector(384)) vector_cosine_ops)
    WHERE model = 'all-MiniLM-L6-v2';
CREATE INDEX post_embeddings_openai_small ON post_embeddings
    USING hnsw ((embedding::vector(1536)) vector_cosine_ops)
    WHERE model = 'text-embedding-3-small';

-- Small key/value state the host and the API share across restarts (current segment, ...).
CREATE TABLE station_state (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Model usage per hour, for cost.
CREATE TABLE model_usage (
    hour              timestamptz NOT NULL,
    model             text NOT NULL,
    audio_in_tokens   bigint NOT NULL DEFAULT 0,
    audio_out_tokens  bigint NOT NULL DEFAULT 0,
    text_in_tokens    bigint NOT NULL DEFAULT 0,
    text_out_tokens   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, model)
);
