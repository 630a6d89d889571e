// Logs: door, calls, alarms, audit, detections; filters, paging, CSV export.
import { useState, useEffect } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import { AptPicker } from '../lib/pickers.js';
import {
  html, useSession, useAll, PageHead, DataTable, LoadError, href, fmtTime, fromLocalInput, toLocalInput,
  fmtDuration, brief, METHODS,
} from '../lib/ui.js';

// The filters each log offers (the server answers 400 to any other):
// `type` is the door log type, the call phase, the alarm or detection kind,
// the audit action; `result` is the door result or the alarm state.
const KINDS = {
  door: { title: 'Door logs', filters: ['building', 'apt', 'device'],
    types: [['call', 'Call'], ['door_release', 'Door release'], ['door_close', 'Door close']],
    results: [['success', 'Success'], ['failed', 'Failed'], ['offline', 'Offline']] },
  calls: { title: 'Call history', filters: ['apartment', 'device'],
    types: [['start', 'Started'], ['answered', 'Answered'], ['end', 'Ended']], typeLabel: 'Phase' },
  alarms: { title: 'Alarm records', filters: ['apartment', 'device'],
    types: [['emergency', 'Emergency / fire'], ['tamper', 'Tamper'], ['arming', 'Arming'], ['motion', 'Motion']], typeLabel: 'Alarm',
    results: [['triggered', 'Triggered'], ['cleared', 'Cleared']], resultLabel: 'State' },
  audit: { title: 'Audit log', filters: [], typeLabel: 'Action',
    types: [['create', 'Create'], ['update', 'Update'], ['delete', 'Delete'], ['reset', 'Reset'], ['open', 'Door open'], ['solve', 'Alarm solved'], ['emergency', 'Emergency'], ['login', 'Login']] },
  detections: { title: 'Detections', filters: ['apartment', 'device'], typeLabel: 'Detection',
    types: [['motion', 'Motion'], ['package_in', 'Package in'], ['package_out', 'Package out']] },
};

const json = (v) => {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
};

function columns(kind, settings, dev, brd) {
  const time = { label: 'Time', render: (r) => html`<span class="nowrap">${fmtTime(r.ts, settings)}</span>` };
  const apt = { label: 'Apartment', render: (r) => (r.apt ? `APT ${r.apt}` : r.apartment || '') };
  const device = { label: 'Device', render: (r) => dev(r.device) };
  switch (kind) {
    case 'door': return [time,
      { label: 'Type', render: (r) => (r.type || '').replace('_', ' ') },
      { label: 'Door', render: (r) => (r.board ? `${brd(r.board)} channel ${r.channel}` : `${dev(r.device)}${r.relay ? ` relay ${r.relay}` : ''}`) },
      apt,
      { label: 'Initiated by', render: (r) => r.initiator || r.person || '' },
      { label: 'Method', render: (r) => METHODS[r.method] || r.method || '' },
      { label: 'Result', render: (r) => html`<span class=${r.result === 'success' ? 'ok-text' : 'error-text'}>${r.result}</span>${r.reason ? ` (${r.reason.replace(/_/g, ' ')})` : ''}` }];
    case 'calls': return [time,
      { label: 'Caller', render: (r) => r.caller || dev(r.device) },
      { label: 'Receiver', render: (r) => r.receiver || '' }, apt,
      { label: 'Phase', render: (r) => r.phase || '' },
      { label: 'Duration', render: (r) => fmtDuration(r.duration) },
      { label: 'Door opened', render: (r) => (r.opened ? 'Yes' : r.opened === 0 || r.opened === false ? 'No' : '') }];
    case 'alarms': return [time,
      { label: 'Alarm', render: (r) => r.kind || r.type || '' },
      { label: 'State', render: (r) => r.state || '' }, device, apt,
      { label: 'Zone', render: (r) => r.zone || '' },
      { label: 'Solved', render: (r) => (r.solved ? `Yes${r.solved_by ? `, by ${r.solved_by}` : ''}` : 'No') }];
    case 'audit': return [time,
      { label: 'User', render: (r) => r.actor || '' },
      { label: 'Action', render: (r) => r.action || '' },
      { label: 'What', render: (r) => [r.entity, r.eid].filter(Boolean).join(' ') },
      { label: 'Change', render: (r) => (r.before || r.after ? html`<details><summary>Before and after</summary>
        <div class="side-by-side"><pre>${JSON.stringify(json(r.before), null, 1) || '-'}</pre><pre>${JSON.stringify(json(r.after), null, 1) || '-'}</pre></div>
      </details>` : '') }];
    default: return [time,
      { label: 'Detection', render: (r) => (r.kind || '').replace('_', ' ') }, device, apt,
      { label: 'Details', render: (r) => brief(json(r.data)) }];
  }
}

export function Logs({ query }) {
  const kind = KINDS[query.kind] ? query.kind : 'door';
  return html`<${LogView} key=${kind} kind=${kind} />`;
}

function LogView({ kind }) {
  const { settings } = useSession();
  const tz = settings && settings.timezone;
  const k = KINDS[kind];
  const buildings = useAll('buildings');
  const devices = useAll('devices');
  const boards = useAll('relay_boards');
  const [form, setForm] = useState({});
  const [applied, setApplied] = useState({});
  const [page, setPage] = useState({ items: [], next: null, loading: true, error: null });
  const dev = (mac) => (mac ? (devices.byId.get(mac) || {}).name || mac : '');
  const brd = (id) => { const b = boards.byId.get(id); return b && b.name ? `${b.name} (board ${id})` : `Board ${id}`; };

  async function load(cursor) {
    setPage((p) => ({ ...p, loading: true, error: null }));
    try {
      const r = await api.list(`/logs/${kind}`, { ...applied, limit: 50, cursor });
      setPage((p) => ({ items: cursor ? [...p.items, ...r.items] : r.items, next: r.next, loading: false, error: null }));
    } catch (error) {
      setPage((p) => ({ ...p, loading: false, error }));
    }
  }
  useEffect(() => {
    load(null);
  }, [JSON.stringify(applied)]);

  const set = (name) => (e) => setForm({ ...form, [name]: e.target.value });
  const setTime = (name) => (e) => setForm({ ...form, [name]: fromLocalInput(e.target.value, tz) });
  const submit = (e) => {
    e.preventDefault();
    setApplied(Object.fromEntries(Object.entries(form).filter(([, v]) => v !== '' && v !== null && v !== undefined)));
  };
  const csv = api.url(`/logs/${kind}`, { ...applied, format: 'csv' });

  return html`<div>
    <${PageHead} title="Logs" />
    <nav aria-label="Log kinds" class="tabs">
      ${Object.entries(KINDS).map(([id, x]) => html`<a href=${href('logs', { kind: id })} data-test=${`log-${id}`}
        aria-current=${id === kind ? 'page' : undefined}>${x.title}</a>`)}
    </nav>
    <h2>${k.title}</h2>
    <form class="filters" onSubmit=${submit} data-test="log-filters">
      <div class="sub-field"><label for="lf-from">From</label>
        <input type="datetime-local" id="lf-from" data-test="filter-from" value=${form.from ? toLocalInput(form.from, tz) : ''} onInput=${setTime('from')} /></div>
      <div class="sub-field"><label for="lf-to">To</label>
        <input type="datetime-local" id="lf-to" data-test="filter-to" value=${form.to ? toLocalInput(form.to, tz) : ''} onInput=${setTime('to')} /></div>
      <div class="sub-field"><label for="lf-type">${k.typeLabel || 'Type'}</label>
        <select id="lf-type" data-test="filter-type" value=${form.type || ''} onChange=${set('type')}>
          <option value="">All</option>${k.types.map(([v, l]) => html`<option value=${v}>${l}</option>`)}</select></div>
      ${k.filters.includes('building') && html`<div class="sub-field"><label for="lf-building">Building</label>
        <select id="lf-building" data-test="filter-building" value=${form.building || ''} onChange=${set('building')}>
          <option value="">All</option>${buildings.items.map((b) => html`<option value=${b.id}>${b.name}</option>`)}</select></div>`}
      ${k.filters.includes('apt') && html`<div class="sub-field"><label for="lf-apt">APT</label>
        <input id="lf-apt" data-test="filter-apt" class="narrow" value=${form.apt || ''} onInput=${set('apt')} /></div>`}
      ${k.filters.includes('apartment') && html`<div class="sub-field"><label for="lf-apartment">Apartment</label>
        <${AptPicker} id="lf-apartment" value=${form.apartment || null} set=${(v) => setForm({ ...form, apartment: v })}
          common=${{ id: 'lf-apartment', 'data-test': 'filter-apartment' }} /></div>`}
      ${k.filters.includes('device') && html`<div class="sub-field"><label for="lf-device">Device</label>
        <select id="lf-device" data-test="filter-device" value=${form.device || ''} onChange=${set('device')}>
          <option value="">All</option>${devices.items.map((d) => html`<option value=${d.id}>${d.name}</option>`)}</select></div>`}
      ${k.results && html`<div class="sub-field"><label for="lf-result">${k.resultLabel || 'Result'}</label>
        <select id="lf-result" data-test="filter-result" value=${form.result || ''} onChange=${set('result')}>
          <option value="">All</option>${k.results.map(([v, l]) => html`<option value=${v}>${l}</option>`)}</select></div>`}
      <div class="actions">
        <button type="submit" class="primary" data-test="filter-apply">Show</button>
        <a class="button-link" href=${csv} download data-test="export-csv">Export CSV</a>
      </div>
    </form>
    <${LoadError} error=${page.error} retry=${() => load(null)} />
    <${DataTable} testId="log-table" caption=${k.title} columns=${columns(kind, settings, dev, brd)} rows=${page.items}
      empty=${page.loading ? '' : 'No log entries match.'} />
    ${page.loading && html`<p class="loading" role="status">Loading...</p>`}
    ${page.next && !page.loading && html`<button type="button" class="more" data-test="load-more" onClick=${() => load(page.next)}>Load more</button>`}
  </div>`;
}
