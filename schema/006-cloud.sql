-- The cloud link (CLOUD.md): commands received from the cloud, the
-- gateway's own door logs in the event outbox, alarms ahead of the backlog.

-- Cloud commands, deduplicated by their id; result reported once known.
CREATE TABLE cloud_commands (
  id          TEXT PRIMARY KEY,
  op          TEXT NOT NULL,
  target      TEXT,
  args        TEXT NOT NULL DEFAULT '{}',
  state       TEXT NOT NULL DEFAULT 'running',   -- running | done | failed
  device_cmd  TEXT,                              -- commands.cid of a device command
  error       TEXT,
  reported    INTEGER NOT NULL DEFAULT 0,
  received_at INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX cloud_commands_unreported ON cloud_commands(reported, state);

-- Door logs the gateway wrote itself (its decisions, board inputs, remote
-- opens, parking barriers) go to the cloud as events too; door logs of a
-- device's own event already have that event in the outbox (event_id set).
CREATE TRIGGER door_logs_outbox AFTER INSERT ON door_logs WHEN NEW.event_id IS NULL
BEGIN
  INSERT INTO outbox(id, device, type, ts, data)
  VALUES ('gw:door:' || NEW.id, NEW.device, 'door', NEW.ts,
          json_object('type', NEW.type, 'relay', NEW.relay, 'board', NEW.board,
                      'channel', NEW.channel, 'building', NEW.building,
                      'apartment', NEW.apartment, 'apt', NEW.apt, 'person', NEW.person,
                      'initiator', NEW.initiator, 'method', NEW.method, 'code', NEW.code,
                      'credential', NEW.credential, 'result', NEW.result,
                      'reason', NEW.reason,
                      'relays', CASE WHEN json_valid(NEW.relays) THEN json(NEW.relays) END,
                      'floors', CASE WHEN json_valid(NEW.floors) THEN json(NEW.floors) END));
END;

-- Alarms jump the drain queue: a small index over the few of them.
CREATE INDEX outbox_alarms ON outbox(state, seq) WHERE is_alarm = 1;
