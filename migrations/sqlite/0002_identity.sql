-- Verified identity: a conversation knows whether its customer id was signed by the shop.
-- Conversations from before verification existed are treated as anonymous.
ALTER TABLE conversations ADD COLUMN verified INTEGER NOT NULL DEFAULT 0;

-- Retry keys are scoped: to the conversation for its messages, to the verified customer (or
-- to the anonymous key space) for a new conversation's first message. The request's
-- fingerprint lets the same key with a different body be refused instead of replayed.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    client_message_id TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (scope, client_message_id)
);
INSERT INTO idempotency_keys (scope, client_message_id, conversation_id, request_hash, response, created_at)
    SELECT 'conversation:' || conversation_id, client_message_id, conversation_id, '', response, created_at
    FROM idempotency;
DROP TABLE idempotency;
