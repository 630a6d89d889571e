// Boards & buses: relay boards, lift controllers and readers on RS485 / Modbus
// TCP with live state and last error, channels to open, parking lots.
import { useState, useEffect } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import * as ws from '../ws.js';
import { html, useSession, can, useAll, PageHead, Badge, notify, invalidate } from '../lib/ui.js';
import { EntitySection } from '../lib/crud.js';
import { BoardChannelSelect, ListEditor } from '../lib/pickers.js';

const PROFILES = ['MK485-G2R-8J8C', 'HF-8000', 'RSAC-C1-R8', 'LIFT-16', 'UHF-READER', 'LPR-CAMERA'];
const MODES = [
  ['rs485', 'RS485'],
  ['rs485_input_nonlatching', 'RS485 + input, non-latching'],
  ['rs485_input_latching', 'RS485 + input, latching'],
  ['ethernet', 'Ethernet (Modbus TCP)'],
];
const FUNCTIONS = [['door', 'Door'], ['light', 'Light'], ['barrier', 'Barrier'], ['lift_floor', 'Lift floor'], ['other', 'Other']];

function ChannelRow({ item, set, i, disabled, idBase }) {
  const c = item || {};
  const upd = (k, v) => set({ ...c, [k]: v });
  const id = (k) => `${idBase}-c${i}-${k}`;
  const num = (k) => (e) => upd(k, e.target.value === '' ? null : Number(e.target.value));
  return html`<div class="inline wrap channel-row">
    <div class="sub-field"><label for=${id('ch')}>Channel</label>
      <input type="number" id=${id('ch')} class="narrow" min="1" max="256" value=${c.channel ?? ''} disabled=${disabled} onInput=${num('channel')} /></div>
    <div class="sub-field"><label for=${id('name')}>Name</label>
      <input id=${id('name')} maxLength="64" value=${c.name || ''} disabled=${disabled} onInput=${(e) => upd('name', e.target.value)} /></div>
    <div class="sub-field"><label for=${id('fn')}>Function</label>
      <select id=${id('fn')} value=${c.function || 'door'} disabled=${disabled} onChange=${(e) => upd('function', e.target.value)}>
        ${FUNCTIONS.map(([k, l]) => html`<option value=${k}>${l}</option>`)}</select></div>
    <div class="sub-field"><label for=${id('floor')}>Floor</label>
      <input id=${id('floor')} class="narrow" value=${c.floor ?? ''} disabled=${disabled} onInput=${(e) => upd('floor', e.target.value || null)} /></div>
    <div class="sub-field"><label for=${id('hold')}>Hold (ms)</label>
      <input type="number" id=${id('hold')} class="narrow" min="100" value=${c.hold_ms ?? ''} placeholder="site" disabled=${disabled} onInput=${num('hold_ms')} /></div>
  </div>`;
}

function SerialEditor({ value, set, disabled, id }) {
  const s = value || null;
  const upd = (k, v) => set({ ...(s || {}), [k]: v });
  return html`<div>
    <div class="field check"><input type="checkbox" id=${`${id}-def`} checked=${!s} disabled=${disabled}
      onChange=${(e) => set(e.target.checked ? null : { baud: 9600, parity: 'N', data: 8, stop: 1 })} />
      <label for=${`${id}-def`}>Use the profile's serial settings</label></div>
    ${s && html`<div class="inline wrap">
      <div class="sub-field"><label for=${`${id}-baud`}>Baud</label>
        <select id=${`${id}-baud`} value=${String(s.baud || 9600)} disabled=${disabled} onChange=${(e) => upd('baud', Number(e.target.value))}>
          ${[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200].map((b) => html`<option value=${b}>${b}</option>`)}</select></div>
      <div class="sub-field"><label for=${`${id}-par`}>Parity</label>
        <select id=${`${id}-par`} value=${s.parity || 'N'} disabled=${disabled} onChange=${(e) => upd('parity', e.target.value)}>
          <option value="N">None</option><option value="E">Even</option><option value="O">Odd</option></select></div>
      <div class="sub-field"><label for=${`${id}-data`}>Data bits</label>
        <select id=${`${id}-data`} value=${String(s.data || 8)} disabled=${disabled} onChange=${(e) => upd('data', Number(e.target.value))}>
          <option value="8">8</option><option value="7">7</option></select></div>
      <div class="sub-field"><label for=${`${id}-stop`}>Stop bits</label>
        <select id=${`${id}-stop`} value=${String(s.stop || 1)} disabled=${disabled} onChange=${(e) => upd('stop', Number(e.target.value))}>
          <option value="1">1</option><option value="2">2</option></select></div>
    </div>`}
  </div>`;
}

function ReaderRow({ item, set, i, disabled, idBase, boards }) {
  const r = item || {};
  return html`<div class="inline wrap">
    <div class="sub-field"><label for=${`${idBase}-rd${i}-b`}>Reader (board)</label>
      <select id=${`${idBase}-rd${i}-b`} value=${r.board || ''} disabled=${disabled} onChange=${(e) => set({ ...r, board: e.target.value })}>
        <option value="">Choose...</option>
        ${boards.items.map((b) => html`<option value=${b.id}>${b.name || b.id} (${b.profile})</option>`)}</select></div>
    <div class="sub-field"><label for=${`${idBase}-rd${i}-d`}>Direction</label>
      <select id=${`${idBase}-rd${i}-d`} value=${r.direction || 'entry'} disabled=${disabled} onChange=${(e) => set({ ...r, direction: e.target.value })}>
        <option value="entry">Entry</option><option value="exit">Exit</option></select></div>
  </div>`;
}

const boardFields = (buildings, lots) => [
  { name: 'name', label: 'Name', maxLength: 64 },
  { name: 'profile', label: 'Profile (board model)', required: true, datalist: PROFILES, help: 'A profile file in the gateway\'s profiles folder, e.g. MK485-G2R-8J8C, HF-8000, RSAC-C1-R8.' },
  { name: 'mode', label: 'Mode', type: 'select', options: MODES },
  { name: 'bus', label: 'Bus', required: true, help: 'A serial port for RS485 (e.g. /dev/ttyUSB0), or host:port for Ethernet.' },
  { name: 'unit', label: 'Modbus unit (slave) id', type: 'number', min: 0, max: 247 },
  { name: 'serial', label: 'Serial line', type: 'custom', fieldset: true, showIf: (v) => v.mode !== 'ethernet', render: (c) => html`<${SerialEditor} ...${c} />` },
  { name: 'channels', label: 'Channels (relays)', type: 'custom', fieldset: true,
    render: (c) => html`<${ListEditor} value=${c.value} set=${c.set} disabled=${c.disabled} row=${ChannelRow} rowProps=${{ idBase: c.id }}
      addLabel="Add channel" itemName=${(x, i) => `channel ${x.channel ?? i + 1}`}
      newItem=${(list) => ({ channel: Math.max(0, ...list.map((x) => x.channel || 0)) + 1, name: '', function: 'door', floor: null, hold_ms: null })} />` },
  { name: 'building', label: 'Building (lift controllers)', type: 'select', options: [[null, 'None'], ...buildings.items.map((b) => [b.id, b.name])] },
  { name: 'lot', label: 'Parking lot (barriers and readers)', type: 'select', options: [[null, 'None'], ...lots.items.map((l) => [l.id, l.name])] },
];

const lotFields = (boards) => [
  { name: 'name', label: 'Name', required: true, maxLength: 64 },
  { name: 'capacity', label: 'Capacity (vehicles; 0 = no limit)', type: 'number', min: 0 },
  { name: 'entry', label: 'Entry barrier', type: 'custom', render: (c) => html`<${BoardChannelSelect} ...${c} />` },
  { name: 'exit', label: 'Exit barrier', type: 'custom', render: (c) => html`<${BoardChannelSelect} ...${c} />` },
  { name: 'readers', label: 'UHF readers and licence plate cameras', type: 'custom', fieldset: true,
    render: (c) => html`<${ListEditor} value=${c.value} set=${c.set} disabled=${c.disabled} row=${ReaderRow} rowProps=${{ idBase: c.id, boards }}
      addLabel="Add reader" itemName=${(_, i) => `reader ${i + 1}`} newItem=${() => ({ board: '', direction: 'entry' })} />` },
];

export function Boards() {
  const { role } = useSession();
  const site = can(role, 'site');
  const doors = can(role, 'doors');
  const buildings = useAll('buildings');
  const lots = useAll('parking_lots');
  const boards = useAll('relay_boards');
  const [state, setState] = useState({});
  useEffect(() => {
    api.get('/status').then((s) => setState(Object.fromEntries((s.boards || []).map((b) => [b.id, b]))), () => {});
    return ws.subscribe((m) => {
      if (m.type === 'board' && m.id) setState((o) => ({ ...o, [m.id]: { id: m.id, online: m.online, last_error: m.last_error } }));
    });
  }, []);

  async function open(b, c) {
    const label = c.name || `channel ${c.channel}`;
    try {
      const r = await api.post(`/relay_boards/${encodeURIComponent(b.id)}/channels/${c.channel}/open`, {});
      if (r && r.state === 'offline') notify(`${label} of ${b.name || b.id} did not open: the board is offline.`, 'error');
      else notify(`${label} of ${b.name || b.id} opened.`);
    } catch (e) {
      notify(`${label} of ${b.name || b.id} did not open: ${e.message}`, 'error');
    }
  }

  const buses = {};
  for (const b of boards.items) (buses[b.bus] = buses[b.bus] || []).push(b);
  return html`<div>
    <${PageHead} title="Boards & buses" />
    <section class="section" aria-labelledby="buses-head">
      <h2 id="buses-head">Buses</h2>
      ${!boards.items.length && html`<p class="empty">No boards yet.</p>`}
      <div class="cards">
        ${Object.entries(buses).map(([bus, list]) => html`<div class="card" data-test="bus">
          <h3><code>${bus}</code></h3>
          <ul class="plain">${list.map((b) => html`<li>${b.name || b.id} (unit ${b.unit ?? '-'}): <${Badge} on=${(state[b.id] || {}).online} />
            ${(state[b.id] || {}).last_error && html`<span class="error-text"> ${state[b.id].last_error}</span>`}</li>`)}</ul>
        </div>`)}
      </div>
    </section>
    <${EntitySection} entities="relay_boards" title="Relay boards, lift controllers and readers" singular="board" canEdit=${site}
      fields=${boardFields(buildings, lots)} name=${(b) => b.name || b.id} onChanged=${boards.reload}
      defaults=${{ profile: 'MK485-G2R-8J8C', mode: 'rs485', bus: '/dev/ttyUSB0', unit: 1, serial: null, channels: [], building: null, lot: null }}
      columns=${[
        { label: 'Board', render: (b) => b.name || b.id },
        { label: 'Profile', render: (b) => b.profile },
        { label: 'Bus', render: (b) => html`<code>${b.bus}</code> unit ${b.unit ?? ''}` },
        { label: 'State', render: (b) => html`<span data-test="board-state"><${Badge} on=${(state[b.id] || {}).online} /></span>` },
        { label: 'Last error', render: (b) => (state[b.id] || {}).last_error || '' },
        { label: 'Channels', render: (b) => ((b.channels || []).length ? html`<div class="row-actions">
          ${b.channels.map((c) => (doors
            ? html`<button type="button" class="open" data-test="open-channel" data-board=${b.id} data-channel=${c.channel}
                aria-label=${`Open ${c.name || `channel ${c.channel}`} of ${b.name || b.id}`} onClick=${() => open(b, c)}>Open ${c.name || `channel ${c.channel}`}</button>`
            : html`<span class="tag">${c.channel}: ${c.name || c.function}</span>`))}
        </div>` : 'none') },
      ]} />
    <${EntitySection} entities="parking_lots" title="Parking lots" singular="parking lot" canEdit=${site}
      fields=${lotFields(boards)} onChanged=${() => { lots.reload(); invalidate('relay_boards'); }}
      defaults=${{ capacity: 0, entry: null, exit: null, readers: [] }}
      columns=${[
        { label: 'Name', render: (l) => l.name },
        { label: 'Capacity', render: (l) => (l.capacity ? l.capacity : 'no limit') },
        { label: 'Readers', render: (l) => (l.readers || []).length },
      ]} />
  </div>`;
}
