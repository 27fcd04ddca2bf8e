-- Step 1: the four tables of the like store (PostgreSQL).

-- One row per (post, user) that currently likes the post. The primary key is
-- the authoritative dedup: the consumer inserts with ON CONFLICT DO NOTHING.
CREATE TABLE likes (
    post_id  BIGINT      NOT NULL,
    user_id  BIGINT      NOT NULL,
    liked_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (post_id, user_id)
);

-- Exact number of likes rows per post, maintained by the consumer in the same
-- transaction as the rows. version is incremented by every consumer
-- transaction that touches the post; it guards the publication of the base to
-- Redis (see package counts).
CREATE TABLE like_counts (
    post_id    BIGINT      PRIMARY KEY,
    count      BIGINT      NOT NULL,
    version    BIGINT      NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Net effect of consumed events per counter bucket, for recent buckets only
-- (pruned by bucket, hence the index).
CREATE TABLE like_effects (
    post_id BIGINT NOT NULL,
    bucket  BIGINT NOT NULL,
    delta   BIGINT NOT NULL,
    PRIMARY KEY (post_id, bucket)
);
CREATE INDEX like_effects_bucket ON like_effects (bucket);

-- Next log offset to consume per topic partition, written in the same
-- transaction as the effects of the events before it.
CREATE TABLE consumer_offsets (
    topic       TEXT        NOT NULL,
    partition   INT         NOT NULL,
    next_offset BIGINT      NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, partition)
);
