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
