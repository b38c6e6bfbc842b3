-- Photos shoppers attach. The metadata lives here; the bytes are a file named by the
-- attachment's id under DATA_DIR/attachments/, written and fsynced before this row commits.
-- A message names at most one attachment.
CREATE TABLE attachments (
    id TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX attachments_by_conversation ON attachments(conversation_id);

ALTER TABLE messages ADD COLUMN attachment_id TEXT REFERENCES attachments(id);
CREATE INDEX messages_by_attachment ON messages(attachment_id);
