-- Messaging channels (WhatsApp, Telegram, signed webhooks). Lease and schedule times are unix
-- milliseconds so that both backends compare them as integers.

-- A platform user: the customer they are and their conversation on that channel. The inbox
-- lease makes one worker at a time process the conversation's messages, in order.
CREATE TABLE channel_contacts (
    channel TEXT NOT NULL,
    user_id TEXT NOT NULL,
    address TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL UNIQUE,
    inbox_lease_owner TEXT,
    inbox_lease_until_ms INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    PRIMARY KEY (channel, user_id)
);

-- Received messages, stored before the webhook answers 200. The platform's id is unique per
-- channel: a redelivery (on any instance) inserts nothing.
CREATE TABLE channel_inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    platform_message_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    lang TEXT,
    media_id TEXT,
    sent_at TEXT NOT NULL,
    platform_order INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    received_ms INTEGER NOT NULL,
    UNIQUE (channel, platform_message_id)
);
CREATE INDEX channel_inbox_pending ON channel_inbox(state, conversation_id, platform_order);

-- Replies to deliver, written in the same transaction as the message they carry.
CREATE TABLE channel_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    channel TEXT NOT NULL,
    address TEXT NOT NULL,
    text TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    platform_message_id TEXT,
    delivery_status TEXT,
    delivery_rank INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX channel_outbox_queue ON channel_outbox(state, conversation_id, id);
CREATE INDEX channel_outbox_platform ON channel_outbox(channel, platform_message_id);
CREATE INDEX channel_outbox_by_conversation ON channel_outbox(conversation_id, message_id);
