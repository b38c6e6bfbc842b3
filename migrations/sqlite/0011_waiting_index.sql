-- The waiting queue's tickets in deadline order straight from one small index: a partial index
-- holds only waiting conversations and every column a place in line reads, so a handoff's
-- "you are number N in line" never visits the table (`rows::WAITING_TICKETS`).
CREATE INDEX conversations_waiting_tickets ON conversations(sla_due, handoff_at, id, updated_at, ticket, state)
    WHERE state = 'waiting_for_human' AND ticket IS NOT NULL;
