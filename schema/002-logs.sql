-- Logs of PRODUCT.md. Times are Unix seconds. Kept log_retention_days (30),
-- audit logs longer.

CREATE TABLE door_logs (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  ts        INTEGER NOT NULL,
  type      TEXT NOT NULL DEFAULT 'door_release',  -- call | door_release | door_close
  device    TEXT,
  relay     INTEGER,
  board     TEXT,
  channel   INTEGER,
  building  TEXT,
  apartment TEXT,
  apt       TEXT,
  person    TEXT,
  initiator TEXT,                   -- display name, or the visitor's name
  method    TEXT,
  code      TEXT,                   -- masked for PINs
  credential TEXT,
  result    TEXT NOT NULL,          -- success | failed | offline
  reason    TEXT,
  relays    TEXT,                   -- JSON list of relays opened
  floors    TEXT,                   -- JSON list of lift floors granted
  event_id  TEXT                    -- device event id when reported by a device
);
CREATE INDEX door_logs_ts ON door_logs(ts);
CREATE INDEX door_logs_apartment ON door_logs(apartment, ts);
CREATE INDEX door_logs_device ON door_logs(device, ts);

CREATE TABLE call_logs (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  ts        INTEGER NOT NULL,
  device    TEXT,
  call_id   TEXT,
  caller    TEXT,
  receiver  TEXT,
  apartment TEXT,
  phase     TEXT,
  duration  INTEGER,
  opened    INTEGER,
  capture   TEXT
);
CREATE INDEX call_logs_ts ON call_logs(ts);
CREATE INDEX call_logs_apartment ON call_logs(apartment, ts);

CREATE TABLE alarm_logs (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  ts        INTEGER NOT NULL,
  device    TEXT,
  apartment TEXT,
  kind      TEXT NOT NULL,          -- emergency | tamper | arming | ...
  state     TEXT NOT NULL,          -- triggered | cleared
  zone      TEXT,
  solved    INTEGER NOT NULL DEFAULT 0,
  solved_by TEXT,
  solved_at INTEGER
);
CREATE INDEX alarm_logs_ts ON alarm_logs(ts);
CREATE INDEX alarm_logs_apartment ON alarm_logs(apartment, ts);

CREATE TABLE detection_logs (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  ts        INTEGER NOT NULL,
  device    TEXT,
  apartment TEXT,
  kind      TEXT NOT NULL,          -- motion | package_in | package_out
  data      TEXT
);
CREATE INDEX detection_logs_ts ON detection_logs(ts);

CREATE TABLE audit_logs (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  ts      INTEGER NOT NULL,
  actor   TEXT NOT NULL,            -- user name, 'cloud', 'cli', 'system'
  action  TEXT NOT NULL,            -- create | update | delete | reset | open | ...
  entity  TEXT,
  eid     TEXT,
  before  TEXT,
  after   TEXT
);
CREATE INDEX audit_logs_ts ON audit_logs(ts);

CREATE TABLE messages (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  ts        INTEGER NOT NULL,
  apartment TEXT,
  device    TEXT,
  title     TEXT,
  body      TEXT
);
CREATE INDEX messages_apartment ON messages(apartment);
