-- Every todo carries a version, 1 when created and one more on every change: the API's strong ETag
-- ("<version>") and the If-Match preconditions on complete and delete compare it.

-- +goose Up
ALTER TABLE todos ADD COLUMN version bigint NOT NULL DEFAULT 1 CHECK (version > 0);

-- +goose Down
ALTER TABLE todos DROP COLUMN version;
