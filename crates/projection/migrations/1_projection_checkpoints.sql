-- Where each projection stands: the stream sequence of the last event it applied,
-- written in the same transaction as the rows that event changed.
-- (Projection crates' migrations use versions 1–99; each service keeps its own range.)
CREATE TABLE projection_checkpoints (
    name       text PRIMARY KEY,
    sequence   bigint NOT NULL CHECK (sequence >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
