-- Which customer record each open ticket belongs to: a customer's new tier moves
-- the timers of their open tickets and re-orders their place in the queue.
ALTER TABLE routing_open_tickets ADD COLUMN customer_id uuid;

CREATE INDEX routing_open_tickets_customer ON routing_open_tickets (customer_id);
