-- Intake's read model (versions 100–199 are intake's): every ticket with what a
-- returning customer's channel shows ("same issue or a new one?"). Fed by the
-- `intake-customer-tickets` consumer from ticket events, so it also knows a ticket
-- whose customer record was never updated (a submit that died between its appends).
CREATE TABLE customer_tickets (
    ticket_id    uuid PRIMARY KEY,
    customer_id  uuid NOT NULL,
    subject      text NOT NULL,
    product_area text NOT NULL,
    channel      text NOT NULL,
    status       text NOT NULL,
    opened_at    timestamptz NOT NULL,
    version      bigint NOT NULL
);

CREATE INDEX customer_tickets_active
    ON customer_tickets (customer_id, opened_at DESC)
    WHERE status IN ('new', 'open', 'pending');
