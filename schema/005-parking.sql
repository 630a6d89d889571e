-- Smart parking (PRODUCT.md): vehicles inside each lot, and every stay.
CREATE TABLE lot_vehicles (
  lot        TEXT NOT NULL,
  code       TEXT NOT NULL,            -- UHF card or plate as read
  person     TEXT,
  entered_at INTEGER NOT NULL,
  PRIMARY KEY (lot, code)
) WITHOUT ROWID;

CREATE TABLE parking_logs (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  lot        TEXT NOT NULL,
  code       TEXT NOT NULL,
  person     TEXT,
  entered_at INTEGER,
  exited_at  INTEGER,
  duration   INTEGER                   -- seconds inside
);
CREATE INDEX parking_logs_lot ON parking_logs(lot, exited_at);
