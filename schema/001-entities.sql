-- Site state cached from the cloud (or owned by the box in standalone mode).
-- Every entity row keeps its whole JSON representation in `data` (unknown
-- fields pass through) plus the columns the engine and the validator query.
-- rev: cloud revision the row was last applied at; lrev: local change counter
-- (device sync deltas); origin: 'cloud' or 'local'.

CREATE TABLE settings (
  id         TEXT PRIMARY KEY CHECK (id = 'site'),
  data       TEXT NOT NULL,
  rev        INTEGER NOT NULL DEFAULT 0,
  lrev       INTEGER NOT NULL DEFAULT 0,
  origin     TEXT NOT NULL DEFAULT 'cloud',
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE macs (
  id         TEXT PRIMARY KEY,
  data       TEXT NOT NULL,
  rev        INTEGER NOT NULL DEFAULT 0,
  lrev       INTEGER NOT NULL DEFAULT 0,
  origin     TEXT NOT NULL DEFAULT 'cloud',
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE buildings (
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  ground_floor TEXT,
  floor_start  INTEGER,
  data         TEXT NOT NULL,
  rev          INTEGER NOT NULL DEFAULT 0,
  lrev         INTEGER NOT NULL DEFAULT 0,
  origin       TEXT NOT NULL DEFAULT 'cloud',
  updated_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE apartments (
  id          TEXT PRIMARY KEY,
  building    TEXT NOT NULL REFERENCES buildings(id) ON DELETE CASCADE,
  apt         TEXT NOT NULL,
  floor       TEXT,
  valid_from  INTEGER,
  valid_until INTEGER,
  data        TEXT NOT NULL,
  rev         INTEGER NOT NULL DEFAULT 0,
  lrev        INTEGER NOT NULL DEFAULT 0,
  origin      TEXT NOT NULL DEFAULT 'cloud',
  updated_at  INTEGER NOT NULL,
  UNIQUE (building, apt)
) WITHOUT ROWID;
CREATE INDEX apartments_apt ON apartments(apt);

CREATE TABLE persons (
  id         TEXT PRIMARY KEY,
  kind       TEXT NOT NULL,
  apartment  TEXT REFERENCES apartments(id) ON DELETE CASCADE,
  building   TEXT REFERENCES buildings(id) ON DELETE SET NULL,
  first_name TEXT NOT NULL DEFAULT '',
  last_name  TEXT NOT NULL DEFAULT '',
  active     INTEGER NOT NULL DEFAULT 1,
  expires_at INTEGER,
  floors     TEXT,                      -- JSON list of floor labels (lift grants)
  -- copied from the apartment (kept in step by the store) so a decision
  -- reads one row: the building whose default group applies, and the
  -- apartment's valid time
  home_building TEXT,
  apt_from   INTEGER,
  apt_until  INTEGER,
  data       TEXT NOT NULL,
  rev        INTEGER NOT NULL DEFAULT 0,
  lrev       INTEGER NOT NULL DEFAULT 0,
  origin     TEXT NOT NULL DEFAULT 'cloud',
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX persons_apartment ON persons(apartment);
CREATE INDEX persons_building ON persons(building);

CREATE TABLE devices (
  id           TEXT PRIMARY KEY,          -- MAC, 12 upper-case hex digits
  type         INTEGER NOT NULL,
  name         TEXT NOT NULL DEFAULT '',
  area         TEXT NOT NULL DEFAULT 'site',
  building     TEXT REFERENCES buildings(id) ON DELETE SET NULL,
  apartment    TEXT REFERENCES apartments(id) ON DELETE SET NULL,
  internet     INTEGER NOT NULL DEFAULT 1,
  works_offline INTEGER NOT NULL DEFAULT 0,
  data         TEXT NOT NULL,
  rev          INTEGER NOT NULL DEFAULT 0,
  lrev         INTEGER NOT NULL DEFAULT 0,
  origin       TEXT NOT NULL DEFAULT 'cloud',
  updated_at   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX devices_apartment ON devices(apartment);
-- at most one works-offline indoor monitor per apartment
CREATE UNIQUE INDEX devices_offline_monitor ON devices(apartment) WHERE works_offline = 1;

-- Relays of door phones / terminals / monitors, derived from devices.data.
-- methods: bit mask of access methods (engine.h), 0 = all allowed.
CREATE TABLE device_relays (
  device   TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
  n        INTEGER NOT NULL,
  methods  INTEGER NOT NULL DEFAULT 0,
  schedule TEXT,                          -- access group id (relay schedule)
  board    TEXT,                          -- relay wired to a board channel
  channel  INTEGER,
  PRIMARY KEY (device, n)
) WITHOUT ROWID;

CREATE TABLE relay_boards (
  id         TEXT PRIMARY KEY,
  profile    TEXT NOT NULL,
  mode       TEXT NOT NULL,
  bus        TEXT NOT NULL,
  unit       INTEGER NOT NULL DEFAULT 1,
  building   TEXT REFERENCES buildings(id) ON DELETE SET NULL,
  lot        TEXT,
  data       TEXT NOT NULL,
  rev        INTEGER NOT NULL DEFAULT 0,
  lrev       INTEGER NOT NULL DEFAULT 0,
  origin     TEXT NOT NULL DEFAULT 'cloud',
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE board_channels (
  board    TEXT NOT NULL REFERENCES relay_boards(id) ON DELETE CASCADE,
  channel  INTEGER NOT NULL,
  function TEXT NOT NULL DEFAULT 'door',
  floor    TEXT,
  hold_ms  INTEGER,
  PRIMARY KEY (board, channel)
) WITHOUT ROWID;

-- Schedules are stored as columns so the engine never parses JSON:
-- repeat 0 never / 1 daily / 2 weekly; days: bit 1..7 = ISO weekday;
-- from_min/to_min: minutes after local midnight (to < from spans midnight).
CREATE TABLE access_groups (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  building   TEXT REFERENCES buildings(id) ON DELETE CASCADE,
  repeat     INTEGER NOT NULL DEFAULT 0,
  start_ts   INTEGER,
  end_ts     INTEGER,
  days       INTEGER NOT NULL DEFAULT 0,
  from_min   INTEGER,
  to_min     INTEGER,
  data       TEXT NOT NULL,
  rev        INTEGER NOT NULL DEFAULT 0,
  lrev       INTEGER NOT NULL DEFAULT 0,
  origin     TEXT NOT NULL DEFAULT 'cloud',
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX access_groups_building ON access_groups(building);

-- Relays a group opens: tkind 'd' = device relay (tid MAC, tn relay),
-- 'b' = board channel (tid board id, tn channel).
CREATE TABLE group_relays (
  grp   TEXT NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
  tkind TEXT NOT NULL,
  tid   TEXT NOT NULL,
  tn    INTEGER NOT NULL,
  PRIMARY KEY (tkind, tid, tn, grp)
) WITHOUT ROWID;
CREATE INDEX group_relays_grp ON group_relays(grp);

-- Members: mkind 'p' person, 'a' apartment, 'b' building.
CREATE TABLE group_members (
  grp    TEXT NOT NULL REFERENCES access_groups(id) ON DELETE CASCADE,
  mkind  TEXT NOT NULL,
  member TEXT NOT NULL,
  PRIMARY KEY (mkind, member, grp)
) WITHOUT ROWID;
CREATE INDEX group_members_grp ON group_members(grp);

CREATE TABLE temp_keys (
  id              TEXT PRIMARY KEY,
  building        TEXT REFERENCES buildings(id) ON DELETE CASCADE,
  apartment       TEXT REFERENCES apartments(id) ON DELETE CASCADE,
  code            TEXT,
  qr              TEXT,
  repeat          INTEGER NOT NULL DEFAULT 0,
  start_ts        INTEGER,
  end_ts          INTEGER,
  days            INTEGER NOT NULL DEFAULT 0,
  from_min        INTEGER,
  to_min          INTEGER,
  uses_per_device INTEGER,               -- NULL = unlimited
  uses_total      INTEGER,               -- uses_per_device x devices
  uses_used       INTEGER NOT NULL DEFAULT 0,  -- box-owned counter
  data            TEXT NOT NULL,
  rev             INTEGER NOT NULL DEFAULT 0,
  lrev            INTEGER NOT NULL DEFAULT 0,
  origin          TEXT NOT NULL DEFAULT 'cloud',
  updated_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX temp_keys_code ON temp_keys(code) WHERE code IS NOT NULL;
CREATE INDEX temp_keys_qr ON temp_keys(qr) WHERE qr IS NOT NULL;
CREATE INDEX temp_keys_apartment ON temp_keys(apartment);

CREATE TABLE temp_key_relays (
  key   TEXT NOT NULL REFERENCES temp_keys(id) ON DELETE CASCADE,
  tkind TEXT NOT NULL,
  tid   TEXT NOT NULL,
  tn    INTEGER NOT NULL,
  PRIMARY KEY (key, tkind, tid, tn)
) WITHOUT ROWID;

CREATE TABLE temp_key_devices (
  key    TEXT NOT NULL REFERENCES temp_keys(id) ON DELETE CASCADE,
  device TEXT NOT NULL,
  PRIMARY KEY (key, device)
) WITHOUT ROWID;

-- scope: the apartment id for PINs in APT+PIN mode, '' otherwise; it makes
-- (type, scope, code) the uniqueness key of PINs and the lookup key of all.
CREATE TABLE credentials (
  id          TEXT PRIMARY KEY,
  person      TEXT REFERENCES persons(id) ON DELETE CASCADE,
  temp_key    TEXT REFERENCES temp_keys(id) ON DELETE CASCADE,
  type        TEXT NOT NULL,
  code        TEXT NOT NULL,
  scope       TEXT NOT NULL DEFAULT '',
  valid_from  INTEGER,
  valid_until INTEGER,
  long_term   INTEGER NOT NULL DEFAULT 1,
  data        TEXT NOT NULL,
  rev         INTEGER NOT NULL DEFAULT 0,
  lrev        INTEGER NOT NULL DEFAULT 0,
  origin      TEXT NOT NULL DEFAULT 'cloud',
  updated_at  INTEGER NOT NULL,
  CHECK ((person IS NULL) <> (temp_key IS NULL))
) WITHOUT ROWID;
-- covering: a decision reads the credential from this index alone
CREATE INDEX credentials_lookup ON credentials(type, code, scope, person, temp_key, valid_from,
                                               valid_until, long_term);
CREATE INDEX credentials_person ON credentials(person, type);
CREATE INDEX credentials_temp_key ON credentials(temp_key) WHERE temp_key IS NOT NULL;

CREATE TABLE parking_lots (
  id         TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  capacity   INTEGER NOT NULL DEFAULT 0,
  data       TEXT NOT NULL,
  rev        INTEGER NOT NULL DEFAULT 0,
  lrev       INTEGER NOT NULL DEFAULT 0,
  origin     TEXT NOT NULL DEFAULT 'cloud',
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Deleted entities, so devices and the cloud link can be told (deltas by lrev).
CREATE TABLE tombstones (
  entity TEXT NOT NULL,
  id     TEXT NOT NULL,
  lrev   INTEGER NOT NULL,
  PRIMARY KEY (entity, id)
) WITHOUT ROWID;
CREATE INDEX tombstones_lrev ON tombstones(lrev);
