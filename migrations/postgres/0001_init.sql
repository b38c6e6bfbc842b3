-- The PostgreSQL schema: the same tables and columns as the embedded SQLite store (so both
-- backends read into the same row structs), with integer flags as BIGINT, times as TIMESTAMPTZ
-- and JSON documents as TEXT.

CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT 'en',
    tier TEXT NOT NULL DEFAULT 'standard',
    lifetime_spend_cents BIGINT NOT NULL DEFAULT 0,
    order_count BIGINT NOT NULL DEFAULT 0,
    complaints_90d BIGINT NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX orders_by_customer ON orders(customer_id);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    verified BIGINT NOT NULL DEFAULT 0,
    channel TEXT NOT NULL,
    lang TEXT NOT NULL,
    state TEXT NOT NULL,
    slots TEXT NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    handoff_reason TEXT,
    handoff_intent TEXT,
    handoff_at TIMESTAMPTZ,
    version BIGINT NOT NULL DEFAULT 0,
    ticket TEXT,
    sla_due TIMESTAMPTZ,
    priority BIGINT NOT NULL DEFAULT 0,
    team TEXT,
    agent_id TEXT,
    assigned_at TIMESTAMPTZ,
    first_response_at TIMESTAMPTZ,
    resolution TEXT,
    csat_score BIGINT,
    csat_comment TEXT
);
CREATE INDEX conversations_by_customer ON conversations(customer_id, created_at);
CREATE INDEX conversations_queue ON conversations(state, sla_due);
CREATE INDEX conversations_by_agent ON conversations(agent_id, state);

CREATE TABLE messages (
    id BIGSERIAL PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    channel TEXT NOT NULL,
    intent TEXT,
    confidence DOUBLE PRECISION,
    out_of_scope BIGINT,
    alternatives TEXT NOT NULL DEFAULT '[]',
    route TEXT,
    route_reason TEXT,
    client_message_id TEXT,
    agent_id TEXT,
    private BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);

CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    client_message_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (scope, client_message_id)
);

CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    languages TEXT NOT NULL,
    teams TEXT NOT NULL,
    capacity BIGINT NOT NULL,
    status TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL,
    last_seen_at TIMESTAMPTZ
);

-- Every change appends its events in the same transaction. Writers take a transaction-level
-- advisory lock before drawing sequence numbers, so sequences become visible in order: a
-- reader that has seen seq N has seen every event below N.
CREATE TABLE events (
    seq BIGSERIAL PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    shopper_visible BIGINT NOT NULL,
    agent_id TEXT,
    team TEXT,
    at TIMESTAMPTZ NOT NULL
);
CREATE INDEX events_by_conversation ON events(conversation_id, seq);

-- Keys every instance must share (the conversation-token key, a generated admin token),
-- written once by whichever instance starts first.
CREATE TABLE shared_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
