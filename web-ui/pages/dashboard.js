// Dashboard: GET /api/v1/status, the live stream, the emergency button.
import { useState, useEffect, useRef } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import * as ws from '../ws.js';
import {
  html, useSession, can, useAsync, useAll, PageHead, Dialog, Badge, LoadError, DataTable,
  notify, href, fmtTime, fmtDuration, brief, METHODS,
} from '../lib/ui.js';

const WAN_TEXT = {
  up: 'Connected to the cloud.',
  down: 'The cloud cannot be reached. Doors, calls and local edits keep working; events wait in the outbox.',
  standalone: 'No cloud is configured: this gateway is the source of truth.',
};

export function Dashboard({ live, setLive }) {
  const { role, settings } = useSession();
  const st = useAsync(() => api.get('/status'), []);
  const boards = useAll('relay_boards');
  const devices = useAll('devices');
  const [asking, setAsking] = useState(false);

  useEffect(() => {
    if (st.data) setLive((l) => ({ ...l, wan: st.data.wan, emergency: !!st.data.emergency }));
  }, [st.data]);

  // keep the figures fresh: every 30 s, and soon after a device comes or goes
  useEffect(() => {
    const every = setInterval(st.reload, 30000);
    let soon = null;
    const off = ws.subscribe((m) => {
      if (m.type === 'device' && !soon) soon = setTimeout(() => { soon = null; st.reload(); }, 1000);
      if (m.type === 'board') {
        st.setData((s) => s && {
          ...s,
          boards: [...(s.boards || []).filter((b) => b.id !== m.id), { id: m.id, online: m.online, last_error: m.last_error }],
        });
      }
    });
    return () => { clearInterval(every); clearTimeout(soon); off(); };
  }, [st.reload]);

  const s = st.data;
  const boardName = (id) => { const b = boards.byId.get(id); return b && b.name ? `${b.name} (${id})` : id; };
  return html`<div class="dashboard">
    <${PageHead} title="Dashboard" />
    <${LoadError} error=${st.error} retry=${st.reload} />
    <section class="emergency" aria-labelledby="emergency-head">
      <h2 id="emergency-head">Emergency unlock</h2>
      <p data-test="emergency-state" class=${live.emergency ? 'em-on' : 'em-off'}>
        ${live.emergency ? 'ON: the emergency doors are held open.' : 'Off: doors work normally.'}</p>
      ${can(role, 'emergency')
        ? html`<button type="button" id="emergency-button" class=${live.emergency ? 'big-button lock' : 'big-button unlock'}
            onClick=${() => setAsking(true)}>${live.emergency ? 'End emergency and lock doors' : 'Emergency: unlock doors'}</button>`
        : html`<p class="help">Your role cannot trigger an emergency unlock.</p>`}
    </section>
    ${asking && html`<${EmergencyDialog} on=${live.emergency} onClose=${() => setAsking(false)}
      onDone=${(on) => { setLive((l) => ({ ...l, emergency: on })); st.reload(); }} />`}
    ${s && Array.isArray(s.problems) && html`<section aria-labelledby="problems-head" class="problems" data-test="problems">
      <h2 id="problems-head">${s.problems.length ? `${s.problems.length} problem${s.problems.length === 1 ? '' : 's'}` : 'No problems found'}</h2>
      ${s.problems.length > 0 && html`<ul>
        ${s.problems.map((p, i) => html`<li key=${i} class=${`problem ${p.level}`} data-test="problem" data-level=${p.level}>
          <strong>${p.level === 'error' ? 'Error' : 'Warning'}:</strong> ${p.what}
          <br /><span class="help">What to check: ${p.fix}</span></li>`)}
      </ul>`}
    </section>`}
    ${s && html`<section aria-labelledby="site-head">
      <h2 id="site-head">Site status</h2>
      <div class="cards">
        <div class="card" data-test="card-wan"><h3>Cloud (WAN)</h3>
          <p class=${`big wan-${live.wan || s.wan}`}>${live.wan || s.wan}</p><p class="help">${WAN_TEXT[live.wan || s.wan] || ''}</p></div>
        <div class="card" data-test="card-devices"><h3>Devices online</h3>
          <p class="big"><a href=${href('devices')}>${s.devices ? `${s.devices.online} / ${s.devices.total}` : '-'}</a></p>
          <p class="help">door phones, indoor monitors, guard phones, access terminals</p></div>
        <div class="card" data-test="card-outbox"><h3>Outbox</h3>
          <p class="big">${s.outbox ?? '-'}</p><p class="help">events waiting to be sent to the cloud</p></div>
        <div class="card" data-test="card-gateway"><h3>Gateway</h3>
          <p>Version ${s.version}</p>
          ${s.uptime !== undefined && html`<p>Up ${fmtDuration(s.uptime)}</p>`}
          <p>Cloud revision ${s.rev}</p></div>
      </div>
    </section>`}
    ${s && html`<section aria-labelledby="boards-head">
      <h2 id="boards-head">Relay boards</h2>
      <${DataTable} testId="dashboard-boards" caption="Relay boards" empty="No relay boards on this site."
        rows=${(s.boards || []).slice().sort((a, b) => String(a.id).localeCompare(String(b.id)))}
        columns=${[
          { label: 'Board', render: (b) => html`<a href=${href('boards')}>${boardName(b.id)}</a>` },
          { label: 'State', render: (b) => html`<${Badge} on=${b.online} />` },
          { label: 'Last error', render: (b) => html`<span class="error-text">${b.last_error || ''}</span>` },
        ]} />
    </section>`}
    <${EventFeed} devices=${devices} boardName=${boardName} settings=${settings} />
  </div>`;
}

function EmergencyDialog({ on, onClose, onDone }) {
  const [doors, setDoors] = useState('group');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState('');
  async function go() {
    setBusy(true);
    setErr('');
    try {
      const body = on ? { state: 'off' } : doors === 'all' ? { state: 'on', doors: 'all' } : { state: 'on' };
      await api.post('/emergency', body);
      notify(on ? 'Emergency ended: doors are locked again.' : 'Emergency unlock is on.');
      onDone(!on);
      onClose();
    } catch (e) {
      setErr(e.message);
      setBusy(false);
    }
  }
  return html`<${Dialog} title=${on ? 'End the emergency?' : 'Unlock doors for an emergency?'} onClose=${onClose} testId="emergency-dialog">
    ${on
      ? html`<p>The emergency doors are locked again and work normally.</p>`
      : html`<p>The doors open at once and stay open until you end the emergency. Indoor monitors are notified.</p>
        <fieldset class="field group"><legend>Which doors</legend>
          <label class="radio"><input type="radio" name="em-doors" value="group" checked=${doors === 'group'}
            data-test="emergency-doors-group" onChange=${() => setDoors('group')} /> The emergency door group (Settings)</label>
          <label class="radio"><input type="radio" name="em-doors" value="all" checked=${doors === 'all'}
            data-test="emergency-doors-all" onChange=${() => setDoors('all')} /> All doors</label>
        </fieldset>`}
    <div class="form-error" role="alert">${err}</div>
    <div class="actions">
      <button type="button" class=${on ? 'primary' : 'danger'} data-test="emergency-confirm" disabled=${busy} onClick=${go}>
        ${busy ? 'Working...' : on ? 'Lock doors' : 'Unlock doors now'}</button>
      <button type="button" data-test="emergency-cancel" data-autofocus onClick=${onClose}>Cancel</button>
    </div>
  </${Dialog}>`;
}

/* ---- live feed: known message types in words, unknown ones as JSON ---- */

const DOOR_TYPES = { call: 'Call', door_release: 'Release', door_close: 'Closed' };
const words = (s) => String(s || '').replace(/_/g, ' ');

// An event is a new log row ({"log":"door"|"alarm"|"call", ...its columns,
// "log_type"}) or a device event as CLOUD.md sends it ({"event":{type,data}}).
function eventText(m, devName, boardName) {
  let kind;
  let d;
  if (m.log) {
    kind = m.log;
    d = m;
  } else {
    const e = m.event && typeof m.event === 'object' ? m.event : m;
    kind = e === m ? m.kind : e.type;
    d = { device: e.device, ...(e.data && typeof e.data === 'object' ? e.data : e) };
  }
  const where = d.device ? ` at ${devName(d.device)}` : d.board ? ` at ${boardName(d.board)} channel ${d.channel}` : '';
  const apt = d.apt ? ` APT ${d.apt}` : '';
  const reason = d.reason ? ` (${words(d.reason)})` : '';
  switch (kind) {
    case 'door':
      if (d.result) {
        const by = d.initiator ? ` by ${d.initiator}` : '';
        const how = d.method ? `, ${METHODS[d.method] || d.method}` : '';
        return `${DOOR_TYPES[d.log_type || d.type] || 'Door'} ${d.result}${apt}${where}${by}${how}${reason}`;
      }
      return `Door${d.relay ? ` (relay ${d.relay})` : ''} ${d.state || ''}${where}`;
    case 'access':
      return `${METHODS[d.method] || d.method || 'Access'} ${d.result || ''}${apt}${where}${reason}`;
    case 'call':
      return `Call ${d.phase || ''}${d.caller ? ` from ${d.caller}` : where}${d.receiver || d.to ? ` to ${d.receiver || d.to}` : ''}${d.duration ? `, ${fmtDuration(d.duration)}` : ''}`;
    case 'alarm':
      return `${words(d.kind)} alarm ${d.state || ''}${where}${d.zone ? `, zone ${d.zone}` : ''}`;
    default: {
      const { type, ...rest } = d;
      return `${kind || 'event'}${where}: ${brief(type === 'event' ? rest : d)}`;
    }
  }
}

const LOG_LABELS = { door: 'Door', alarm: 'Alarm', call: 'Call' };

function describe(m, devName, boardName) {
  switch (m.type) {
    case 'event': return [LOG_LABELS[m.log] || 'Event', eventText(m, devName, boardName)];
    case 'device': return ['Device', `${devName(m.mac)} is ${m.online ? 'online' : 'offline'}`];
    case 'board': return ['Board', `${boardName(m.id)} is ${m.online ? 'online' : 'offline'}${m.last_error ? `: ${m.last_error}` : ''}`];
    case 'wan': return ['Cloud', `connection ${m.state}`];
    case 'emergency': return ['Emergency', m.on ? 'emergency unlock ON' : 'emergency unlock off'];
    case 'hello': return ['Live', 'connected to the gateway'];
    default: {
      const { type, ...rest } = m;
      return [type, brief(rest)];
    }
  }
}

// The feed outlives the dashboard: what arrived while another page was open
// is there on coming back (the last 100 messages; another user's login starts
// afresh). Subscribed once, when the app loads.
const FEED_MAX = 100;
const feed = { items: [], seq: 0, user: null };
ws.subscribe((m) => {
  if (m.type === 'hello' && m.user !== feed.user) {
    feed.items = [];
    feed.user = m.user;
  }
  feed.items = [{ n: ++feed.seq, at: Date.now() / 1000, m }, ...feed.items].slice(0, FEED_MAX);
});

function EventFeed({ devices, boardName, settings }) {
  const { user } = useSession();
  const mine = () => (feed.user === user ? feed.items : []); // never the previous login's lines
  const [items, setItems] = useState(mine);
  const [paused, setPaused] = useState(false);
  const [waiting, setWaiting] = useState(0); // arrived while paused
  const pausedRef = useRef(false);
  pausedRef.current = paused;
  useEffect(() => {
    const off = ws.subscribe(() => {
      if (pausedRef.current) setWaiting((n) => Math.min(n + 1, FEED_MAX));
      else setItems(mine());
    });
    setItems(mine()); // what arrived between the first render and now
    return off;
  }, []);
  const resume = () => {
    setItems(mine());
    setWaiting(0);
    setPaused(false);
  };
  const devName = (mac) => { const d = devices.byId.get(mac); return d ? d.name : mac; };
  return html`<section aria-labelledby="feed-head" class="feed">
    <div class="section-head">
      <h2 id="feed-head">Live events</h2>
      <button type="button" data-test="feed-pause" aria-pressed=${paused ? 'true' : 'false'}
        onClick=${() => (paused ? resume() : setPaused(true))}>${paused ? `Resume (${waiting} waiting)` : 'Pause'}</button>
    </div>
    <ol class="event-feed" data-test="event-feed" aria-live=${paused ? 'off' : 'polite'} aria-relevant="additions">
      ${items.map(({ n, at, m }) => {
        const [label, text] = describe(m, devName, boardName);
        return html`<li key=${n} data-type=${m.type} data-log=${m.log}>
          <span class="when">${fmtTime(m.ts || (m.event && m.event.ts) || at, settings).split(' ')[1]}</span>
          <span class=${`kind k-${m.log || m.type}`}>${label}</span> <span class="what">${text}</span>
        </li>`;
      })}
    </ol>
    ${!items.length && html`<p class="empty">Waiting for events...</p>`}
  </section>`;
}
