-- The reference agent service's state (store.py). Created at start when missing.

-- One row per agent session: its status and the ask it waits for.
CREATE TABLE IF NOT EXISTS agent_sessions (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    tenant TEXT NOT NULL,
    status TEXT NOT NULL,
    pending_ask_id TEXT,
    pending_question TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
-- The model's messages of each agent session, in order, tagged with their execution.
CREATE TABLE IF NOT EXISTS transcript (
    agent_session_id TEXT NOT NULL REFERENCES agent_sessions (id),
    seq INTEGER NOT NULL,
    execution_key TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (agent_session_id, seq)
);
-- Executions by Idempotency-Key; ended: its final event is stored (a request only replays).
CREATE TABLE IF NOT EXISTS executions (
    key TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    agent_session_id TEXT NOT NULL REFERENCES agent_sessions (id),
    ended INTEGER NOT NULL DEFAULT 0,
    last_event_id INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_open ON executions (agent_session_id) WHERE ended = 0;
-- Each execution's events by id, stored before any stream sends them.
CREATE TABLE IF NOT EXISTS events (
    execution_key TEXT NOT NULL REFERENCES executions (key),
    id INTEGER NOT NULL,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (execution_key, id)
);
-- Tool calls whose TOOL_START was sent (never announced twice).
CREATE TABLE IF NOT EXISTS tool_runs (
    execution_key TEXT NOT NULL,
    call_id TEXT NOT NULL,
    tool TEXT NOT NULL,
    start_event_id INTEGER NOT NULL,
    PRIMARY KEY (execution_key, call_id)
);
-- What open_ticket writes: one ticket per execution key and tool call.
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_key TEXT NOT NULL,
    call_id TEXT NOT NULL,
    agent_session_id TEXT NOT NULL,
    summary TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (execution_key, call_id)
);
