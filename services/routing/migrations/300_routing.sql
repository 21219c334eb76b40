-- Routing's indexes (versions 300–399 are routing's). The event log decides; these
-- only find things fast, and every row is checked against the log before use.

-- Tickets waiting for an agent because nobody fitted, in assignment order. A row
-- is written (or deleted, once the ticket has its agent or is solved) only from a
-- ticket version at least as new as the row's.
CREATE TABLE routing_queue (
    ticket_id    uuid PRIMARY KEY,
    tenant       text NOT NULL,
    product_area text NOT NULL,
    priority     smallint NOT NULL,  -- 0 low … 3 urgent
    tier         smallint NOT NULL,  -- 0 basic, 1 standard, 2 extended
    queued_at    bigint NOT NULL,    -- ms since the epoch
    version      bigint NOT NULL     -- the ticket version this row reflects
);

CREATE INDEX routing_queue_order
    ON routing_queue (tenant, tier DESC, priority DESC, queued_at, ticket_id);

-- The agent who last handled each customer (assigned or replied): rule 2, "the
-- one who knows them".
CREATE TABLE routing_last_handler (
    customer_id uuid PRIMARY KEY,
    agent_id    text NOT NULL,
    handled_at  bigint NOT NULL
);
