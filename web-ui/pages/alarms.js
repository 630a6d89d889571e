// Alarms: alarm records (GET /api/v1/logs/alarms, newest first), solve
// (POST /api/v1/alarms/{id}/solve). The log has no "solved" filter: the
// unsolved ones are picked here from the pages read.
import { useState, useEffect } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import * as ws from '../ws.js';
import { html, useSession, can, useAll, PageHead, DataTable, LoadError, notify, fmtTime } from '../lib/ui.js';

const KIND = { emergency: 'Emergency / fire', tamper: 'Tamper', arming: 'Arming', motion: 'Motion' };

export function Alarms() {
  const { role, user, settings } = useSession();
  const devices = useAll('devices');
  const [only, setOnly] = useState('unsolved');
  const [page, setPage] = useState({ items: [], next: null, loading: true, error: null });
  const [fresh, setFresh] = useState(0);

  async function load(cursor) {
    setPage((p) => ({ ...p, loading: true, error: null }));
    try {
      const r = only
        ? await api.listWhere('/logs/alarms', { limit: 200, cursor }, (a) => !a.solved, 50, 10)
        : await api.list('/logs/alarms', { limit: 50, cursor });
      setPage((p) => ({ items: cursor ? [...p.items, ...r.items] : r.items, next: r.next, loading: false, error: null }));
    } catch (error) {
      setPage((p) => ({ ...p, loading: false, error }));
    }
  }
  useEffect(() => {
    load(null);
    setFresh(0);
  }, [only]);
  // a new alarm on the live stream: offer to refresh rather than move rows under the user's hands
  useEffect(() => ws.subscribe((m) => {
    const e = m.event || {};
    if (m.type === 'event' && (m.log === 'alarm' || e.type === 'alarm')) setFresh((n) => n + 1);
  }), []);

  async function solve(a) {
    try {
      const r = await api.post(`/alarms/${encodeURIComponent(a.id)}/solve`, {});
      const solved = r && r.id !== undefined ? r : { ...a, solved: true, solved_by: user, solved_at: Math.floor(Date.now() / 1000) };
      setPage((p) => ({ ...p, items: p.items.map((x) => (x.id === a.id ? solved : x)) }));
      notify('Alarm marked as solved.');
    } catch (e) {
      notify(`The alarm could not be solved: ${e.message}`, 'error');
    }
  }

  const dev = (mac) => (mac ? (devices.byId.get(mac) || {}).name || mac : '');
  const cols = [
    { label: 'Time', render: (a) => fmtTime(a.ts, settings) },
    { label: 'Alarm', render: (a) => KIND[a.kind] || a.kind || '' },
    { label: 'State', render: (a) => a.state || '' },
    { label: 'Device', render: (a) => dev(a.device) },
    { label: 'Apartment', render: (a) => (a.apt ? `APT ${a.apt}` : a.apartment || '') },
    { label: 'Zone', render: (a) => a.zone || '' },
    { label: 'Solved', render: (a) => (a.solved
      ? `Yes${a.solved_by ? `, by ${a.solved_by}` : ''}${a.solved_at ? `, ${fmtTime(a.solved_at, settings)}` : ''}`
      : can(role, 'alarms')
        ? html`<button type="button" data-test="solve-alarm" data-id=${a.id} aria-label=${`Mark the ${a.kind} alarm of ${fmtTime(a.ts, settings)} as solved`}
            onClick=${() => solve(a)}>Mark solved</button>`
        : 'No') },
  ];
  return html`<div>
    <${PageHead} title="Alarms" />
    <div class="filters">
      <label for="alarm-filter">Show</label>
      <select id="alarm-filter" data-test="filter-solved" value=${only} onChange=${(e) => setOnly(e.target.value)}>
        <option value="unsolved">Unsolved alarms</option>
        <option value="">All alarms</option>
      </select>
      ${fresh > 0 && html`<button type="button" data-test="alarms-refresh" onClick=${() => { setFresh(0); load(null); }}>
        ${fresh} new: refresh</button>`}
    </div>
    <${LoadError} error=${page.error} retry=${() => load(null)} />
    <${DataTable} testId="alarm-table" caption="Alarms" columns=${cols} rows=${page.items}
      empty=${page.loading ? '' : only ? 'No unsolved alarms.' : 'No alarms.'} />
    ${page.loading && html`<p class="loading" role="status">Loading...</p>`}
    ${page.next && !page.loading && html`<button type="button" class="more" data-test="load-more" onClick=${() => load(page.next)}>Load more</button>`}
  </div>`;
}
