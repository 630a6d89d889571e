// Access groups (schedule, relays, members) and temp keys (visitors).
import { useState } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import {
  html, useSession, can, useAll, useAsync, useEntity, PageHead, PersonName, fmtTime, personName, aptLabel,
  isDoorPhone, opts, WEEKDAYS, PERSON_KINDS,
} from '../lib/ui.js';
import { EntitySection } from '../lib/crud.js';
import { AptPicker, RelayListPicker, ScheduleEditor, useRelayTargets, relayLabel } from '../lib/pickers.js';

export function schedText(s, settings) {
  if (!s) return 'Always';
  const win = s.from && s.to ? ` ${s.from}-${s.to}` : '';
  const range = s.start || s.end ? ` (${s.start ? `from ${fmtTime(s.start, settings)}` : ''}${s.start && s.end ? ' ' : ''}${s.end ? `until ${fmtTime(s.end, settings)}` : ''})` : '';
  if (s.repeat === 'daily') return `Every day${win}${range}`;
  if (s.repeat === 'weekly') return `${(s.days || []).map((d) => WEEKDAYS[d - 1]).join(', ')}${win}${range}`;
  return `Once${range || ' (no dates)'}`;
}

function AptChip({ id }) {
  const a = useEntity('apartments', id);
  const buildings = useAll('buildings');
  return html`<span>${a.data ? aptLabel(a.data, buildings.byId) : id}</span>`;
}

function Chips({ ids, Label, remove, disabled, what, max = 100 }) {
  if (!ids.length) return html`<p class="empty">No ${what}s.</p>`;
  return html`<ul class="chips">
    ${ids.slice(0, max).map((id) => html`<li key=${id}><${Label} id=${id} />
      ${!disabled && html`<button type="button" class="chip-x" data-test=${`remove-${what}`} aria-label=${`Remove ${what} ${id}`}
        onClick=${() => remove(id)}>Remove</button>`}</li>`)}
    ${ids.length > max && html`<li>and ${ids.length - max} more</li>`}
  </ul>`;
}

function PersonPicker({ add, exclude, idBase }) {
  const [kind, setKind] = useState('staff');
  const [apt, setApt] = useState(null);
  const [pick, setPick] = useState('');
  const found = useAsync(() => {
    const filter = apt ? { apartment: apt } : { kind };
    return api.listWhere('/persons', { ...filter, limit: 200 }, api.matches(filter), 200);
  }, [kind, apt]);
  const people = ((found.data && found.data.items) || []).filter((p) => !exclude.includes(p.id));
  return html`<div class="inline wrap">
    <div class="sub-field"><label for=${`${idBase}-kind`}>Kind</label>
      <select id=${`${idBase}-kind`} value=${kind} disabled=${!!apt} onChange=${(e) => setKind(e.target.value)}>
        ${opts(PERSON_KINDS).map(([k, l]) => html`<option value=${k}>${l}</option>`)}
      </select></div>
    <div class="sub-field"><label for=${`${idBase}-apt`}>or apartment</label>
      <${AptPicker} id=${`${idBase}-apt`} value=${apt} set=${setApt} common=${{ id: `${idBase}-apt` }} /></div>
    <div class="sub-field"><label for=${`${idBase}-person`}>Person</label>
      <select id=${`${idBase}-person`} data-test="member-person" value=${pick} onChange=${(e) => setPick(e.target.value)}>
        <option value="">${found.loading ? 'Loading...' : `Choose (${people.length})...`}</option>
        ${people.map((p) => html`<option value=${p.id}>${personName(p)}</option>`)}
      </select></div>
    <button type="button" data-test="add-member-person" disabled=${!pick} onClick=${() => { add(pick); setPick(''); }}>Add person</button>
  </div>`;
}

function MembersEditor({ value, set, id, disabled }) {
  const m = { persons: [], apartments: [], buildings: [], ...(value || {}) };
  const buildings = useAll('buildings');
  const [apt, setApt] = useState(null);
  const upd = (k, list) => set({ ...m, [k]: list });
  return html`<div class="members">
    <fieldset class="sub"><legend>Buildings (everyone living there)</legend>
      ${buildings.items.map((b) => html`<label class="check-inline">
        <input type="checkbox" disabled=${disabled} checked=${m.buildings.includes(b.id)} data-test="member-building"
          onChange=${(e) => upd('buildings', e.target.checked ? [...m.buildings, b.id] : m.buildings.filter((x) => x !== b.id))} /> ${b.name}</label>`)}
    </fieldset>
    <fieldset class="sub"><legend>Apartments (residents and family)</legend>
      <${Chips} ids=${m.apartments} Label=${AptChip} what="apartment" disabled=${disabled} remove=${(x) => upd('apartments', m.apartments.filter((y) => y !== x))} />
      ${!disabled && html`<div class="inline">
        <${AptPicker} id=${`${id}-apt`} value=${apt} set=${setApt} common=${{ id: `${id}-apt`, 'aria-label': 'Apartment to add' }} />
        <button type="button" data-test="add-member-apartment" disabled=${!apt || m.apartments.includes(apt)}
          onClick=${() => { upd('apartments', [...m.apartments, apt]); setApt(null); }}>Add apartment</button></div>`}
    </fieldset>
    <fieldset class="sub"><legend>People (staff, delivery, residents)</legend>
      <${Chips} ids=${m.persons} Label=${PersonName} what="person" disabled=${disabled} remove=${(x) => upd('persons', m.persons.filter((y) => y !== x))} />
      ${!disabled && html`<${PersonPicker} idBase=${`${id}-p`} exclude=${m.persons} add=${(x) => upd('persons', [...m.persons, x])} />`}
    </fieldset>
  </div>`;
}

function DoorPhones({ value, set, disabled }) {
  const devices = useAll('devices');
  const list = Array.isArray(value) ? value : [];
  const phones = devices.items.filter(isDoorPhone);
  if (!phones.length) return html`<p class="empty">No door phones on this site.</p>`;
  return phones.map((d) => html`<label class="check-inline">
    <input type="checkbox" disabled=${disabled} checked=${list.includes(d.id)} data-test="tempkey-device"
      onChange=${(e) => set(e.target.checked ? [...list, d.id] : list.filter((x) => x !== d.id))} /> ${d.name}</label>`);
}

const groupFields = (buildings) => [
  { name: 'name', label: 'Name', required: true, maxLength: 128 },
  { name: 'building', label: 'Default group of building', type: 'select', options: [[null, 'No (an ordinary group)'], ...buildings.items.map((b) => [b.id, b.name])],
    help: 'Every building has a default group holding the devices of its public area.' },
  { name: 'schedule', label: 'Schedule', type: 'custom', fieldset: true, render: (c) => html`<${ScheduleEditor} ...${c} />` },
  { name: 'relays', label: 'Relays (doors, gates, barriers)', type: 'custom', fieldset: true, render: (c) => html`<${RelayListPicker} ...${c} />` },
  { name: 'members', label: 'Members', type: 'custom', fieldset: true, render: (c) => html`<${MembersEditor} ...${c} />` },
];

const keyFields = (buildings) => [
  { name: 'visitor', label: 'Visitor name', maxLength: 64 },
  { name: 'id_number', label: 'Visitor ID number', nullIfEmpty: true, maxLength: 64 },
  { name: 'building', label: 'Building', type: 'select', options: [[null, 'None'], ...buildings.items.map((b) => [b.id, b.name])] },
  { name: 'apartment', label: 'Apartment visited', type: 'custom', render: (c) => html`<${AptPicker} ...${c} />` },
  { name: 'code', label: 'PIN', nullIfEmpty: true, maxLength: 8, help: '2-8 digits, not starting with 9. A temp key needs a PIN and/or a QR code.' },
  { name: 'qr', label: 'QR code', nullIfEmpty: true, maxLength: 256 },
  { name: 'schedule', label: 'Valid', type: 'custom', fieldset: true, render: (c) => html`<${ScheduleEditor} ...${c} allowAlways=${false} />`,
    help: 'A key that does not repeat needs its end (expiry).' },
  { name: 'relays', label: 'Relays it opens', type: 'custom', fieldset: true, render: (c) => html`<${RelayListPicker} ...${c} />` },
  { name: 'devices', label: 'Door phones', type: 'custom', fieldset: true, render: (c) => html`<${DoorPhones} ...${c} />` },
  { name: 'uses_per_device', label: 'Uses per door phone', type: 'number', min: 1,
    showIf: (v) => !v.schedule || v.schedule.repeat === 'never',
    help: 'Empty = unlimited. Total uses = this number x the door phones chosen, spent on any of them.' },
];

export function Groups() {
  const { role, settings } = useSession();
  const edit = can(role, 'people');
  const buildings = useAll('buildings');
  const targets = useRelayTargets();
  const relays = (list) => (list || []).map((r) => relayLabel(r, targets)).join('; ');
  return html`<div>
    <${PageHead} title="Access groups & temp keys" />
    <p class="lead">A person may open a relay when one of their access groups contains it and the group's schedule is open (site time).</p>
    <${EntitySection} entities="access_groups" title="Access groups" singular="access group" canEdit=${edit}
      fields=${groupFields(buildings)} defaults=${{ schedule: null, relays: [], members: { persons: [], apartments: [], buildings: [] } }}
      columns=${[
        { label: 'Name', render: (g) => g.name },
        { label: 'Schedule', render: (g) => schedText(g.schedule, settings) },
        { label: 'Relays', render: (g) => relays(g.relays) || 'none' },
        { label: 'Members', render: (g) => {
          const m = g.members || {};
          return [[m.buildings, 'building'], [m.apartments, 'apartment'], [m.persons, 'person']]
            .filter(([l]) => l && l.length).map(([l, w]) => `${l.length} ${w}${l.length > 1 ? 's' : ''}`).join(', ') || 'none';
        } },
        { label: 'Building default', render: (g) => (g.building ? (buildings.byId.get(g.building) || {}).name || g.building : '') },
      ]} />
    <${EntitySection} entities="temp_keys" title="Temp keys (visitors)" singular="temp key" canEdit=${edit}
      fields=${keyFields(buildings)} name=${(k) => k.visitor || k.id}
      defaults=${{ schedule: { repeat: 'never', start: null, end: null }, relays: [], devices: [], uses_per_device: null }}
      columns=${[
        { label: 'Visitor', render: (k) => k.visitor || '' },
        { label: 'Apartment', render: (k) => (k.apartment ? html`<${AptChip} id=${k.apartment} />` : '') },
        { label: 'PIN / QR', render: (k) => [k.code && `PIN ${k.code}`, k.qr && 'QR'].filter(Boolean).join(', ') },
        { label: 'Valid', render: (k) => schedText(k.schedule, settings) },
        { label: 'Uses left', render: (k) => (k.uses_left === null || k.uses_left === undefined ? 'unlimited' : k.uses_left) },
      ]} />
  </div>`;
}
