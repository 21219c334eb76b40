-- The active tickets of each tenant (routing's SLA consumer keeps it): when a
-- tenant's SLA policy changes, their clocks are recomputed and timers moved.
CREATE TABLE routing_open_tickets (
    ticket_id uuid PRIMARY KEY,
    tenant    text NOT NULL
);

CREATE INDEX routing_open_tickets_tenant ON routing_open_tickets (tenant);
