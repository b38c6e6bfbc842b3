-- The human queue: optimistic versions, tickets, assignments, agents and the event log.
ALTER TABLE conversations ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN ticket TEXT;
ALTER TABLE conversations ADD COLUMN sla_due TEXT;
ALTER TABLE conversations ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN team TEXT;
ALTER TABLE conversations ADD COLUMN agent_id TEXT;
ALTER TABLE conversations ADD COLUMN assigned_at TEXT;
ALTER TABLE conversations ADD COLUMN first_response_at TEXT;
ALTER TABLE conversations ADD COLUMN resolution TEXT;
ALTER TABLE conversations ADD COLUMN csat_score INTEGER;
ALTER TABLE conversations ADD COLUMN csat_comment TEXT;
CREATE INDEX conversations_queue ON conversations(state, sla_due);
CREATE INDEX conversations_by_agent ON conversations(agent_id, state);

ALTER TABLE messages ADD COLUMN agent_id TEXT;
ALTER TABLE messages ADD COLUMN private INTEGER NOT NULL DEFAULT 0;

CREATE TABLE agents (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    languages TEXT NOT NULL,
    teams TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    status TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_seen_at TEXT
);

-- Every change appends its events here in the same transaction; seq orders them.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    shopper_visible INTEGER NOT NULL,
    agent_id TEXT,
    team TEXT,
    at TEXT NOT NULL
);
CREATE INDEX events_by_conversation ON events(conversation_id, seq);
