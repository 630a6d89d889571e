// Editors for the compound fields of CLOUD.md: apartment references,
// relay references, schedules, lists of rows.
import { useState } from '../vendor/hooks.module.js';
import { html, useAll, useEntity, useSession, toLocalInput, fromLocalInput, WEEKDAYS } from './ui.js';

/** Building then APT: VALUE is an apartment id (or null). */
export function AptPicker({ value, set, id, common, optional = true }) {
  const buildings = useAll('buildings');
  const current = useEntity('apartments', value);
  const [chosen, setChosen] = useState(null);
  const b = chosen ?? (current.data && current.data.building) ?? '';
  const apts = useAll('apartments', { building: b }, !b);
  const sorted = [...apts.items].sort((x, y) => String(x.apt).localeCompare(String(y.apt), undefined, { numeric: true }));
  return html`<div class="inline">
    <label class="sr-only" for=${`${id}-building`}>Building of the apartment</label>
    <select id=${`${id}-building`} data-test="apt-building" disabled=${common.disabled} value=${b}
      onChange=${(e) => { setChosen(e.target.value); set(null); }}>
      <option value="">Building...</option>
      ${buildings.items.map((x) => html`<option value=${x.id}>${x.name}</option>`)}
    </select>
    <select ...${common} value=${value || ''} onChange=${(e) => set(e.target.value || null)}>
      <option value="">${optional ? 'No apartment' : 'APT...'}</option>
      ${sorted.map((a) => html`<option value=${a.id}>APT ${a.apt}${a.name ? ` (${a.name})` : ''}</option>`)}
    </select>
  </div>`;
}

/** Every relay the site has: device relays and board channels, for pickers. */
export function useRelayTargets() {
  const devices = useAll('devices');
  const boards = useAll('relay_boards');
  return { devices, boards };
}

const refKey = (r) => (r.board !== undefined && r.device === undefined ? `b|${r.board}|${r.channel}` : `d|${r.device}|${r.relay}`);
const keyRef = (k) => {
  const [t, a, n] = k.split('|');
  return t === 'b' ? { board: a, channel: Number(n) } : { device: a, relay: Number(n) };
};

/** "Main gate: relay 1 (Gate)" / "Board MK485 #1: channel 3 (Lobby door)". */
export function relayLabel(r, t) {
  if (!r) return '';
  if (r.board !== undefined && r.device === undefined) {
    const b = t.boards.byId.get(r.board);
    const ch = b && (b.channels || []).find((c) => c.channel === r.channel);
    return `Board ${b ? b.name || b.id : r.board}: channel ${r.channel}${ch && ch.name ? ` (${ch.name})` : ''}`;
  }
  const d = t.devices.byId.get(r.device);
  const rel = d && (d.relays || []).find((x) => x.n === r.relay);
  return `${d ? d.name : r.device}: relay ${r.relay}${rel && rel.name ? ` (${rel.name})` : ''}`;
}

function targetOptions(t, { devices = true, boards = true }) {
  const out = [];
  if (devices) {
    for (const d of t.devices.items) {
      const rs = d.relays && d.relays.length ? d.relays : [];
      for (const r of rs) out.push([refKey({ device: d.id, relay: r.n }), relayLabel({ device: d.id, relay: r.n }, t), 'Door phone and device relays']);
    }
  }
  if (boards) {
    for (const b of t.boards.items) {
      for (const c of b.channels || []) out.push([refKey({ board: b.id, channel: c.channel }), relayLabel({ board: b.id, channel: c.channel }, t), 'Relay board channels']);
    }
  }
  return out;
}

function Options({ list }) {
  const groups = [...new Set(list.map((o) => o[2]))];
  return groups.map((g) => html`<optgroup label=${g}>
    ${list.filter((o) => o[2] === g).map(([k, label]) => html`<option value=${k}>${label}</option>`)}
  </optgroup>`);
}

/** A list of relay references [{device,relay}|{board,channel}]. */
export function RelayListPicker({ value, set, id, common, devices = true, boards = true }) {
  const t = useRelayTargets();
  const list = Array.isArray(value) ? value : [];
  const have = new Set(list.map(refKey));
  const options = targetOptions(t, { devices, boards }).filter((o) => !have.has(o[0]));
  const [pick, setPick] = useState('');
  return html`<div class="picker">
    ${list.length ? html`<ul class="chips">
      ${list.map((r) => html`<li key=${refKey(r)}>
        <span>${relayLabel(r, t)}</span>
        <button type="button" class="chip-x" disabled=${common.disabled} data-test="remove-relay"
          aria-label=${`Remove ${relayLabel(r, t)}`} onClick=${() => set(list.filter((x) => refKey(x) !== refKey(r)))}>Remove</button>
      </li>`)}
    </ul>` : html`<p class="empty">No relays chosen.</p>`}
    ${!common.disabled && html`<div class="inline">
      <label class="sr-only" for=${id}>Relay to add</label>
      <select id=${id} data-test=${common['data-test']} aria-describedby=${common['aria-describedby']} value=${pick} onChange=${(e) => setPick(e.target.value)}>
        <option value="">Choose a relay...</option>
        <${Options} list=${options} />
      </select>
      <button type="button" data-test="add-relay" disabled=${!pick}
        onClick=${() => { set([...list, keyRef(pick)]); setPick(''); }}>Add relay</button>
    </div>`}
  </div>`;
}

/** One board channel {board, channel} or null (device relay wiring, barriers). */
export function BoardChannelSelect({ value, set, common }) {
  const t = useRelayTargets();
  const options = targetOptions(t, { devices: false });
  return html`<select ...${common} value=${value ? refKey(value) : ''} onChange=${(e) => set(e.target.value ? keyRef(e.target.value) : null)}>
    <option value="">None</option>
    <${Options} list=${options} />
  </select>`;
}

/** Access group / temp key schedule; null = always. */
export function ScheduleEditor({ value, set, id, disabled, allowAlways = true }) {
  const s = value || null;
  const repeat = s ? s.repeat || 'never' : 'always';
  const upd = (k, v) => set({ ...(s || {}), [k]: v });
  const setRepeat = (r) => {
    if (r === 'always') return set(null);
    const base = { repeat: r, start: s && s.start ? s.start : null, end: s && s.end ? s.end : null };
    if (r !== 'never') Object.assign(base, { from: (s && s.from) || '08:00', to: (s && s.to) || '18:00' });
    if (r === 'weekly') base.days = (s && s.days && s.days.length ? s.days : [1, 2, 3, 4, 5]);
    set(base);
  };
  const kinds = [
    ...(allowAlways ? [['always', 'Always']] : []),
    ['never', 'One period (does not repeat)'],
    ['daily', 'Every day'],
    ['weekly', 'Chosen weekdays'],
  ];
  const days = (s && s.days) || [];
  return html`<div class="schedule">
    <div class="radios" role="radiogroup" aria-label="Repeat">
      ${kinds.map(([k, label]) => html`<label class="radio">
        <input type="radio" name=${`${id}-repeat`} value=${k} checked=${repeat === k} disabled=${disabled}
          data-test=${`schedule-${k}`} onChange=${() => setRepeat(k)} /> ${label}</label>`)}
    </div>
    ${repeat === 'weekly' && html`<fieldset class="days"><legend>Weekdays</legend>
      ${WEEKDAYS.map((d, i) => html`<label class="check-inline">
        <input type="checkbox" checked=${days.includes(i + 1)} disabled=${disabled} data-test=${`schedule-day-${i + 1}`}
          onChange=${(e) => upd('days', e.target.checked ? [...days, i + 1].sort() : days.filter((x) => x !== i + 1))} /> ${d}</label>`)}
    </fieldset>`}
    ${(repeat === 'daily' || repeat === 'weekly') && html`<div class="inline">
      <label for=${`${id}-from`}>From</label>
      <input type="time" id=${`${id}-from`} data-test="schedule-from" value=${s.from || ''} disabled=${disabled} onInput=${(e) => upd('from', e.target.value)} />
      <label for=${`${id}-to`}>to</label>
      <input type="time" id=${`${id}-to`} data-test="schedule-to" value=${s.to || ''} disabled=${disabled} onInput=${(e) => upd('to', e.target.value)} />
    </div>
    <p class="help">A window that ends before it starts (22:00 to 06:00) runs past midnight.</p>`}
    ${repeat !== 'always' && html`<${StartEnd} s=${s} upd=${upd} id=${id} disabled=${disabled} optional=${repeat !== 'never'} />`}
  </div>`;
}

function StartEnd({ s, upd, id, disabled, optional }) {
  return html`<div class="inline">
    <${DateTimeInput} id=${`${id}-start`} label=${optional ? 'Valid from (optional)' : 'Starts'} value=${s.start} set=${(v) => upd('start', v)} disabled=${disabled} test="schedule-start" />
    <${DateTimeInput} id=${`${id}-end`} label=${optional ? 'Valid until (optional)' : 'Ends'} value=${s.end} set=${(v) => upd('end', v)} disabled=${disabled} test="schedule-end" />
  </div>`;
}

/** Unix seconds, shown and typed in the site's time zone. */
export function DateTimeInput({ id, label, value, set, disabled, test }) {
  const { settings } = useSession();
  const tz = settings && settings.timezone;
  const shown = typeof value === 'number' ? toLocalInput(value, tz) : value || '';
  return html`<div class="sub-field">
    <label for=${id}>${label}</label>
    <input type="datetime-local" id=${id} data-test=${test} value=${shown} disabled=${disabled}
      onInput=${(e) => set(fromLocalInput(e.target.value, tz))} />
  </div>`;
}

/** Rows of an array field with add / remove; ROW({...rowProps, item, set, i, disabled}). */
export function ListEditor({ value, set, disabled, row: Row, rowProps = {}, newItem, addLabel, max, itemName }) {
  const list = Array.isArray(value) ? value : [];
  return html`<div class="list-editor">
    ${list.map((item, i) => html`<div class="list-row" key=${i}>
      <${Row} ...${rowProps} item=${item} i=${i} disabled=${disabled} set=${(v) => set(list.map((x, j) => (j === i ? v : x)))} />
      ${!disabled && html`<button type="button" class="danger-link" data-test="remove-row"
        onClick=${() => set(list.filter((_, j) => j !== i))}>Remove ${itemName(item, i)}</button>`}
    </div>`)}
    ${!disabled && (!max || list.length < max) && html`<button type="button" data-test="add-row" onClick=${() => set([...list, newItem(list)])}>${addLabel}</button>`}
  </div>`;
}
