-- Device presence from the MQTT link: retained status and last will.
CREATE TABLE presence (
  device    TEXT PRIMARY KEY,
  online    INTEGER NOT NULL DEFAULT 0,
  model     TEXT,
  fw        TEXT,
  ip        TEXT,
  last_seen INTEGER NOT NULL,
  since     INTEGER NOT NULL            -- when online last changed
) WITHOUT ROWID;

-- What each device was last sent by sync.pull (MQTT.md): one row per item
-- (credential, temp key, contact) with the hash of what it holds, so the
-- next pull sends only what changed and what went away.
CREATE TABLE device_sync (
  device TEXT NOT NULL,
  item   TEXT NOT NULL,                -- "credential:ID", "temp_key:ID", "contact:ID"
  hash   INTEGER NOT NULL,
  rev    INTEGER NOT NULL,
  PRIMARY KEY (device, item)
) WITHOUT ROWID;

CREATE TABLE device_sync_rev (
  device TEXT PRIMARY KEY,
  rev    INTEGER NOT NULL
) WITHOUT ROWID;

-- residents by building: the people of a building's default group
CREATE INDEX persons_home_building ON persons(home_building);
