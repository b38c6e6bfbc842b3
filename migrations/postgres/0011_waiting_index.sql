-- The waiting queue's tickets in deadline order from one small index: a partial index holds
-- only waiting conversations, and INCLUDE carries every column a place in line reads, so a
-- handoff's "you are number N in line" is an index-only scan (`rows::WAITING_TICKETS`).
CREATE INDEX conversations_waiting_tickets ON conversations(sla_due, handoff_at)
    INCLUDE (id, updated_at, ticket)
    WHERE state = 'waiting_for_human' AND ticket IS NOT NULL;
