-- A place in line without reading the queue. `queue_lang` is the ticket's language (the line a
-- conversation waits in is its ticket's team and language); a partial index holds only waiting
-- conversations, with every column the count of who is ahead in a line reads
-- (`rows::AHEAD_IN_LINE`).
ALTER TABLE conversations ADD COLUMN queue_lang TEXT;
UPDATE conversations SET queue_lang = ticket::jsonb ->> 'lang' WHERE ticket IS NOT NULL;
CREATE INDEX conversations_line ON conversations(team, queue_lang, sla_due, priority)
    INCLUDE (handoff_at, updated_at, id)
    WHERE state = 'waiting_for_human' AND ticket IS NOT NULL;
