-- A ticket whose decline awaits a manager is still open for its customer: the
-- returning customer's channel lists it.
DROP INDEX customer_tickets_active;
CREATE INDEX customer_tickets_active
    ON customer_tickets (customer_id, opened_at DESC)
    WHERE status IN ('new', 'open', 'pending', 'decline_proposed');
