-- Photos shoppers attach. Instances share no disk, so the bytes live in the database with
-- their metadata: out of line and uncompressed (photos are compressed already), so metadata
-- reads never load them. A message names at most one attachment.
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    content_type TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    bytes BYTEA NOT NULL
);
ALTER TABLE attachments ALTER COLUMN bytes SET STORAGE EXTERNAL;
CREATE INDEX attachments_by_conversation ON attachments(conversation_id);

ALTER TABLE messages ADD COLUMN attachment_id TEXT REFERENCES attachments(id);
CREATE INDEX messages_by_attachment ON messages(attachment_id);
