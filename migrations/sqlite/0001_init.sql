-- Customers: the value and risk signals the handoff priority uses.
CREATE TABLE customers (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT 'en',
    tier TEXT NOT NULL DEFAULT 'standard',
    lifetime_spend_cents INTEGER NOT NULL DEFAULT 0,
    order_count INTEGER NOT NULL DEFAULT 0,
    complaints_90d INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT NOT NULL
);

-- Orders of the embedded order provider (imported from JSON/CSV).
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    body TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX orders_by_customer ON orders(customer_id);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    lang TEXT NOT NULL,
    state TEXT NOT NULL,
    slots TEXT NOT NULL DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    handoff_reason TEXT,
    handoff_intent TEXT,
    handoff_at TEXT
);
CREATE INDEX conversations_by_state ON conversations(state, handoff_at);
CREATE INDEX conversations_by_customer ON conversations(customer_id);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    at TEXT NOT NULL,
    channel TEXT NOT NULL,
    intent TEXT,
    confidence REAL,
    out_of_scope INTEGER,
    alternatives TEXT NOT NULL DEFAULT '[]',
    route TEXT,
    route_reason TEXT,
    client_message_id TEXT
);
CREATE INDEX messages_by_conversation ON messages(conversation_id, id);

-- One row per accepted client_message_id: a retry returns the stored answer.
CREATE TABLE idempotency (
    customer_id TEXT NOT NULL,
    client_message_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, client_message_id)
);
