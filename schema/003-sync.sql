-- Link state: events from devices, the cloud outbox, the local-change
-- journal, commands to devices, key/value sync state, local users.

-- (device, event id) seen: repeated events are acknowledged and stored once.
CREATE TABLE device_events (
  device TEXT NOT NULL,
  eid    TEXT NOT NULL,
  ts     INTEGER NOT NULL,
  PRIMARY KEY (device, eid)
) WITHOUT ROWID;

CREATE TABLE outbox (
  seq      INTEGER PRIMARY KEY AUTOINCREMENT,
  id       TEXT NOT NULL,             -- idempotent event id sent to the cloud (unique by
                                      -- construction: device_events dedupes first;
                                      -- no index, so appends stay sequential: use seq)
  device   TEXT,
  type     TEXT NOT NULL,
  ts       INTEGER NOT NULL,
  data     TEXT NOT NULL,
  is_alarm INTEGER NOT NULL DEFAULT 0,
  state    TEXT NOT NULL DEFAULT 'pending',   -- pending | rejected
  error    TEXT
);
CREATE INDEX outbox_state ON outbox(state, seq);

CREATE TABLE local_changes (
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,
  change_id TEXT NOT NULL UNIQUE,
  entity    TEXT NOT NULL,
  op        TEXT NOT NULL,            -- upsert | delete
  eid       TEXT NOT NULL,
  base_rev  INTEGER NOT NULL DEFAULT 0,
  data      TEXT,
  actor     TEXT NOT NULL,
  ts        INTEGER NOT NULL,
  state     TEXT NOT NULL DEFAULT 'pending'   -- pending | applied | conflict | rejected
);
CREATE INDEX local_changes_state ON local_changes(state, seq);

CREATE TABLE conflicts (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  change_id TEXT NOT NULL,
  entity    TEXT NOT NULL,
  eid       TEXT NOT NULL,
  local     TEXT,
  cloud     TEXT,
  error     TEXT,
  ts        INTEGER NOT NULL
);

CREATE TABLE commands (
  cid        TEXT PRIMARY KEY,
  device     TEXT,
  op         TEXT NOT NULL,
  args       TEXT NOT NULL DEFAULT '{}',
  state      TEXT NOT NULL DEFAULT 'pending',  -- pending | acked | failed | expired
  error      TEXT,
  origin     TEXT,                             -- cloud command id, user, ...
  created_at INTEGER NOT NULL,
  deadline   INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX commands_device_state ON commands(device, state);

CREATE TABLE sync_state (
  key   TEXT PRIMARY KEY,
  value TEXT
) WITHOUT ROWID;

CREATE TABLE users (
  name       TEXT PRIMARY KEY,
  role       TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'viewer')),
  hash       TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
