// Devices & relays: the MAC library, devices with live online state,
// remote door open, maintenance commands and messages.
import { useState, useEffect } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import * as ws from '../ws.js';
import {
  html, useSession, can, useAll, PageHead, Dialog, Badge, notify, opts, aptLabel, useEntity,
  DEVICE_TYPES, METHODS,
} from '../lib/ui.js';
import { EntitySection } from '../lib/crud.js';
import { Form } from '../lib/form.js';
import { AptPicker, BoardChannelSelect, ListEditor } from '../lib/pickers.js';

const MAC_HELP = '12 hexadecimal digits, e.g. 0C11050B9814 (separators are removed).';
const normMac = (s) => String(s || '').replace(/[^0-9a-fA-F]/g, '').toUpperCase();

const macFields = [
  { name: 'id', label: 'MAC address', required: true, lockOnEdit: true, help: MAC_HELP },
  { name: 'remark', label: 'Remark', maxLength: 255 },
];

function RelayRow({ item, set, i, disabled, idBase, groups }) {
  const r = item || {};
  const upd = (k, v) => set({ ...r, [k]: v });
  const id = (k) => `${idBase}-r${i}-${k}`;
  const methods = r.methods;
  return html`<fieldset class="relay-row"><legend>Relay ${r.n ?? i + 1}</legend>
    <div class="inline wrap">
      <div class="sub-field"><label for=${id('n')}>Number</label>
        <input type="number" id=${id('n')} min="1" max="16" value=${r.n ?? ''} disabled=${disabled} class="narrow"
          onInput=${(e) => upd('n', e.target.value === '' ? null : Number(e.target.value))} /></div>
      <div class="sub-field"><label for=${id('name')}>Name</label>
        <input id=${id('name')} value=${r.name || ''} maxLength="64" disabled=${disabled} onInput=${(e) => upd('name', e.target.value)} /></div>
      <div class="sub-field"><label for=${id('dtmf')}>DTMF code</label>
        <input id=${id('dtmf')} value=${r.dtmf ?? '#'} maxLength="8" class="narrow" disabled=${disabled} onInput=${(e) => upd('dtmf', e.target.value)} /></div>
    </div>
    <fieldset class="sub"><legend>Access methods</legend>
      <label class="check-inline"><input type="checkbox" checked=${methods === null || methods === undefined} disabled=${disabled}
        onChange=${(e) => upd('methods', e.target.checked ? null : ['app_home', 'app_talk', 'pin', 'face', 'rf', 'bluetooth', 'nfc'])} /> All methods</label>
      ${Array.isArray(methods) && opts(METHODS).map(([k, l]) => html`<label class="check-inline">
        <input type="checkbox" checked=${methods.includes(k)} disabled=${disabled}
          onChange=${(e) => upd('methods', e.target.checked ? [...methods, k] : methods.filter((x) => x !== k))} /> ${l}</label>`)}
    </fieldset>
    <div class="inline wrap">
      <div class="sub-field"><label for=${id('schedule')}>Relay schedule (access group)</label>
        <select id=${id('schedule')} value=${r.schedule || ''} disabled=${disabled} onChange=${(e) => upd('schedule', e.target.value || null)}>
          <option value="">None</option>
          ${groups.items.map((g) => html`<option value=${g.id}>${g.name}</option>`)}
        </select></div>
      <div class="sub-field"><label for=${id('board')}>Wired to a relay board channel</label>
        <${BoardChannelSelect} value=${r.board} set=${(v) => upd('board', v)} common=${{ id: id('board'), disabled }} /></div>
    </div>
  </fieldset>`;
}

function ServesEditor({ value, set, disabled }) {
  const buildings = useAll('buildings');
  const all = value === 'all' || value === null || value === undefined;
  const list = Array.isArray(value) ? value : [];
  return html`<div>
    <label class="radio"><input type="radio" name="serves" checked=${all} disabled=${disabled} onChange=${() => set('all')} /> All buildings</label>
    <label class="radio"><input type="radio" name="serves" checked=${!all} disabled=${disabled} onChange=${() => set([])} /> Chosen buildings</label>
    ${!all && buildings.items.map((b) => html`<label class="check-inline">
      <input type="checkbox" checked=${list.includes(b.id)} disabled=${disabled}
        onChange=${(e) => set(e.target.checked ? [...list, b.id] : list.filter((x) => x !== b.id))} /> ${b.name}</label>`)}
  </div>`;
}

const deviceFields = (buildings, groups) => [
  { name: 'id', label: 'MAC address', required: true, lockOnEdit: true, help: `${MAC_HELP} It must be in the MAC library.` },
  { name: 'type', label: 'Type', type: 'select', options: opts(DEVICE_TYPES).map(([k, l]) => [Number(k), l]) },
  { name: 'name', label: 'Name', required: true, maxLength: 64 },
  { name: 'area', label: 'Location', type: 'select', options: [['site', 'Site public area'], ['building', 'Public area of a building'], ['apartment', 'Apartment (private area)']] },
  { name: 'building', label: 'Building', type: 'select', showIf: (v) => v.area === 'building', options: [['', 'Choose...'], ...buildings.items.map((b) => [b.id, b.name])] },
  { name: 'apartment', label: 'Apartment', type: 'custom', showIf: (v) => v.area === 'apartment', render: (c) => html`<${AptPicker} ...${c} optional=${false} />` },
  { name: 'serves', label: 'Buildings it serves', type: 'custom', fieldset: true, showIf: (v) => v.area === 'site', render: (c) => html`<${ServesEditor} ...${c} />` },
  { name: 'network_group', label: 'Network group', nullIfEmpty: true, help: 'Devices on the same LAN share a network group.' },
  { name: 'internet', label: 'Has internet access', type: 'checkbox' },
  { name: 'ip', label: 'IP address', nullIfEmpty: true, help: 'Required when the door phone has no internet access (its calls go through the indoor monitor).' },
  { name: 'works_offline', label: 'Works offline (transfers calls of offline door phones to the app; one per apartment)', type: 'checkbox', showIf: (v) => Number(v.type) === 2 },
  { name: 'monitor_allowed', label: 'Allow users to monitor', type: 'checkbox' },
  { name: 'relays', label: 'Relays', type: 'custom', fieldset: true,
    render: (c) => html`<${ListEditor} value=${c.value} set=${c.set} disabled=${c.disabled} row=${RelayRow} rowProps=${{ idBase: c.id, groups }}
      max=${16} addLabel="Add relay" itemName=${(r, i) => `relay ${r.n ?? i + 1}`}
      newItem=${(list) => ({ n: Math.max(0, ...list.map((r) => r.n || 0)) + 1, name: '', dtmf: '#', methods: null, schedule: null, board: null })} />` },
];

function Location({ d, buildings }) {
  const apt = useEntity('apartments', d.area === 'apartment' ? d.apartment : null);
  if (d.area === 'apartment') return apt.data ? aptLabel(apt.data, buildings.byId) : d.apartment || 'apartment';
  if (d.area === 'building') return `${(buildings.byId.get(d.building) || {}).name || d.building} public area`;
  return 'Site public area';
}

export function Devices() {
  const { role } = useSession();
  const site = can(role, 'site');
  const doors = can(role, 'doors');
  const messages = can(role, 'people');
  const buildings = useAll('buildings');
  const groups = useAll('access_groups');
  const [online, setOnline] = useState({});
  const [command, setCommand] = useState(null);
  const [password, setPassword] = useState(null);
  useEffect(() => ws.subscribe((m) => {
    if (m.type === 'device' && m.mac) setOnline((o) => ({ ...o, [m.mac]: !!m.online }));
  }), []);

  async function open(d, n) {
    try {
      const r = await api.post(`/devices/${encodeURIComponent(d.id)}/relays/${n}/open`, {});
      // {"ok":true,"state":"sent"|"offline"}: a device opens its relay when it gets the command
      if (r && r.state === 'offline') notify(`Relay ${n} of ${d.name} did not open: it is offline.`, 'error');
      else notify(`Open sent to relay ${n} of ${d.name}.`);
    } catch (e) {
      notify(`Relay ${n} of ${d.name} did not open: ${e.message}`, 'error');
    }
  }

  return html`<div>
    <${PageHead} title="Devices & relays" />
    <${EntitySection} entities="devices" title="Devices" singular="device" canEdit=${site} pageSize=${100}
      fields=${deviceFields(buildings, groups)} name=${(d) => d.name || d.id}
      defaults=${{ type: 0, area: 'site', internet: true, serves: 'all', relays: [{ n: 1, name: 'Relay 1', dtmf: '#', methods: null, schedule: null, board: null }] }}
      beforeSave=${(v) => ({ ...v, id: normMac(v.id) })}
      afterSave=${(saved, isNew) => {
        const pw = saved.mqtt_password || saved.password;
        if (isNew && pw) setPassword({ mac: saved.id, pw });
      }}
      columns=${[
        { label: 'Name', render: (d) => d.name },
        { label: 'MAC', render: (d) => html`<code>${d.id}</code>` },
        { label: 'Type', render: (d) => DEVICE_TYPES[d.type] || d.type },
        { label: 'Location', render: (d) => html`<${Location} d=${d} buildings=${buildings} />` },
        { label: 'State', render: (d) => html`<span data-test="device-state"><${Badge} on=${online[d.id] ?? d.online} /></span>` },
        ...(!doors ? [] : [{ label: 'Open', render: (d) => ((d.relays || []).length ? html`<div class="row-actions">
          ${d.relays.map((r) => html`<button type="button" class="open" data-test="open-relay" data-mac=${d.id} data-relay=${r.n}
            aria-label=${`Open ${r.name || `relay ${r.n}`} of ${d.name}`} onClick=${() => open(d, r.n)}>Open ${r.name || `relay ${r.n}`}</button>`)}
        </div>` : '') }]),
      ]}
      actions=${(d) => (site || (messages && Number(d.type) === 2)) && html`<button type="button" data-test="device-command" data-mac=${d.id}
        aria-label=${`Send a command to ${d.name}`} onClick=${() => setCommand(d)}>Command</button>`} />
    <${EntitySection} entities="macs" title="MAC library" singular="MAC" canEdit=${site} fields=${macFields}
      name=${(m) => m.id} beforeSave=${(v) => ({ ...v, id: normMac(v.id) })}
      columns=${[{ label: 'MAC', render: (m) => html`<code>${m.id}</code>` }, { label: 'Remark', render: (m) => m.remark || '' }]} />
    ${command && html`<${CommandDialog} d=${command} site=${site} onClose=${() => setCommand(null)} />`}
    ${password && html`<${Dialog} title=${`MQTT password of ${password.mac}`} onClose=${() => setPassword(null)} testId="device-password">
      <p>Enter this password in the device. It is shown only once.</p>
      <p><code class="secret" data-test="device-password-value">${password.pw}</code></p>
      <div class="actions"><button type="button" class="primary" onClick=${() => setPassword(null)}>Done</button></div>
    </${Dialog}>`}
  </div>`;
}

const COMMANDS = [
  ['reboot', 'Reboot'],
  ['reset', 'Reset to factory settings'],
  ['autop', 'AutoP (provisioning commands)'],
  ['message', 'Message to the screen'],
];

function CommandDialog({ d, site, onClose }) {
  const choices = COMMANDS.filter(([c]) => site || c === 'message');
  const fields = [
    { name: 'command', label: 'Command', type: 'select', options: choices },
    { name: 'commands', label: 'AutoP commands (one per line)', type: 'textarea', rows: 5, showIf: (v) => v.command === 'autop' },
    { name: 'once', label: 'Run once (not kept as a regular AutoP)', type: 'checkbox', showIf: (v) => v.command === 'autop' },
    { name: 'title', label: 'Title', showIf: (v) => v.command === 'message', maxLength: 64 },
    { name: 'body', label: 'Message', type: 'textarea', showIf: (v) => v.command === 'message', maxLength: 1000 },
  ];
  async function send(v) {
    let args = {};
    if (v.command === 'autop') args = { commands: [...new Set(String(v.commands || '').split('\n').map((s) => s.trim()).filter(Boolean))], once: !!v.once };
    if (v.command === 'message') args = { title: v.title || '', body: v.body || '' };
    await api.post(`/devices/${encodeURIComponent(d.id)}/commands`, { command: v.command, args });
    notify(`Command ${v.command} sent to ${d.name}. An offline device gets it when it comes back.`);
    onClose();
  }
  return html`<${Dialog} title=${`Command to ${d.name}`} onClose=${onClose} testId="command-dialog">
    <${Form} fields=${fields} initial=${{ command: choices[0][0], once: false }} onSubmit=${send} onCancel=${onClose} submitLabel="Send command" testId="command-form">
      <p class="help">Reboot and reset interrupt the device; reset erases its settings.</p>
    </${Form}>
  </${Dialog}>`;
}
