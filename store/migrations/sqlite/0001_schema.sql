-- Step 1: the four tables of the like store (SQLite). Times are INTEGER Unix
-- milliseconds. See migrations/postgres/0001_schema.sql for what each holds.

CREATE TABLE likes (
    post_id  INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    liked_at INTEGER NOT NULL,
    PRIMARY KEY (post_id, user_id)
) WITHOUT ROWID;

CREATE TABLE like_counts (
    post_id    INTEGER PRIMARY KEY,
    count      INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE like_effects (
    post_id INTEGER NOT NULL,
    bucket  INTEGER NOT NULL,
    delta   INTEGER NOT NULL,
    PRIMARY KEY (post_id, bucket)
) WITHOUT ROWID;
CREATE INDEX like_effects_bucket ON like_effects (bucket);

CREATE TABLE consumer_offsets (
    topic       TEXT    NOT NULL,
    "partition" INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (topic, "partition")
) WITHOUT ROWID;
