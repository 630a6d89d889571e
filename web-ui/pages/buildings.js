// Buildings & apartments: CRUD, apartment reset (POST /apartments/{id}/reset).
import { useState } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import { html, useSession, can, useAll, PageHead, Confirm, notify, navigate, href, fmtTime, CALL_TYPES, invalidate } from '../lib/ui.js';
import { EntitySection } from '../lib/crud.js';
import { ListEditor } from '../lib/pickers.js';

const FLOOR_HELP = 'A floor label: -10 to 128, or G0, G1, G2 (ground floors).';

const buildingFields = [
  { name: 'name', label: 'Name', required: true, maxLength: 128 },
  { name: 'ground_floor', label: 'Ground floor', nullIfEmpty: true, help: `Empty when the ground floor is configured on the device. ${FLOOR_HELP}` },
  { name: 'floor_start', label: 'Floor start', type: 'number', min: -10, max: 128, help: 'The floor of the lift\'s first button (empty: the ground floor).' },
];

const TARGETS = [['apps', 'Apps (master and family)'], ['monitors', 'All indoor monitors'], ['landlines', 'Landlines']];

function SequenceSet({ item, set, i, disabled }) {
  const list = Array.isArray(item) ? item : [];
  return html`<fieldset class="seq-set"><legend>Call set ${i + 1}</legend>
    ${TARGETS.map(([k, label]) => html`<label class="check-inline">
      <input type="checkbox" checked=${list.includes(k)} disabled=${disabled} data-test=${`seq-${i + 1}-${k}`}
        onChange=${(e) => set(e.target.checked ? [...list, k] : list.filter((x) => x !== k))} /> ${label}</label>`)}
  </fieldset>`;
}

function apartmentFields(buildings) {
  return [
    { name: 'building', label: 'Building', type: 'select', required: true, options: [['', 'Choose...'], ...buildings.items.map((b) => [b.id, b.name])] },
    { name: 'apt', label: 'APT number', required: true, maxLength: 6, help: '1-6 digits, letters or #, not starting with # (e.g. 2#123A). Visitors dial it on the door phone.' },
    { name: 'name', label: 'Apartment name', maxLength: 128 },
    { name: 'floor', label: 'Floor', nullIfEmpty: true, help: FLOOR_HELP },
    { name: 'call_type', label: 'Call type', type: 'select', options: CALL_TYPES.map((t, i) => [i, `${i}: ${t}`]) },
    { name: 'call_mode', label: 'Call over', type: 'select', options: [['ip', 'IP call (devices on one LAN)'], ['sip', 'SIP call']] },
    { name: 'contact.mode', label: 'Contact preference', type: 'select', options: [['group', 'Group call (all at once)'], ['sequence', 'Sequence call']] },
    {
      name: 'contact.sequence', label: 'Call order (up to 3 sets)', type: 'custom', fieldset: true,
      showIf: (v) => v.contact && v.contact.mode === 'sequence',
      render: ({ value, set, disabled }) => html`<${ListEditor} value=${value} set=${set} disabled=${disabled} max=${3}
        row=${SequenceSet} newItem=${() => ['monitors']} addLabel="Add a call set" itemName=${(_, i) => `call set ${i + 1}`} />`,
    },
    { name: 'web_relay_id', label: 'Web relay ID', type: 'number', min: 0, max: 65535, help: 'The web relay action ID (0 = none).' },
    { name: 'valid_from', label: 'Valid from (rental)', type: 'datetime' },
    { name: 'valid_until', label: 'Valid until (rental)', type: 'datetime', help: 'After this time the app and every access method of the apartment are refused. Empty = always.' },
    { name: 'auto_delete_family', label: 'Delete family member accounts when the rental ends', type: 'checkbox', showIf: (v) => !!v.valid_until },
  ];
}

export function Buildings({ query }) {
  const { role, settings } = useSession();
  const edit = can(role, 'people');
  const buildings = useAll('buildings');
  const [resetting, setResetting] = useState(null);
  const filter = query.building || '';

  return html`<div>
    <${PageHead} title="Buildings & apartments" />
    <${EntitySection} entities="buildings" title="Buildings" singular="building" canEdit=${can(role, 'site')}
      fields=${buildingFields} onChanged=${buildings.reload}
      columns=${[
        { label: 'Name', render: (b) => b.name },
        { label: 'Ground floor', render: (b) => b.ground_floor ?? 'on the device' },
        { label: 'Floor start', render: (b) => b.floor_start ?? '' },
      ]}
      actions=${(b) => html`<a class="button-link" href=${href('buildings', { building: b.id })} data-test="show-apartments">Apartments</a>`} />

    <${EntitySection} entities="apartments" title="Apartments" singular="apartment" canEdit=${edit}
      query=${filter ? { building: filter } : {}} name=${(a) => `APT ${a.apt}`}
      defaults=${{ building: filter || null, call_type: 0, call_mode: 'ip', contact: { mode: 'group', sequence: [] }, web_relay_id: 0 }}
      fields=${apartmentFields(buildings)}
      toolbar=${html`<div class="filters">
        <label for="apt-filter-building">Building</label>
        <select id="apt-filter-building" data-test="filter-building" value=${filter}
          onChange=${(e) => navigate('buildings', e.target.value ? { building: e.target.value } : {})}>
          <option value="">All buildings</option>
          ${buildings.items.map((b) => html`<option value=${b.id}>${b.name}</option>`)}
        </select>
      </div>`}
      columns=${[
        { label: 'Building', render: (a) => (buildings.byId.get(a.building) || {}).name || a.building },
        { label: 'APT', render: (a) => a.apt },
        { label: 'Name', render: (a) => a.name || '' },
        { label: 'Floor', render: (a) => a.floor ?? '' },
        { label: 'Valid until', render: (a) => (a.valid_until ? fmtTime(a.valid_until, settings) : 'always') },
      ]}
      actions=${(a) => html`
        <a class="button-link" href=${href('people', { apartment: a.id })} data-test="show-people">People</a>
        ${edit && html`<button type="button" data-test="reset-apartment" data-id=${a.id}
          aria-label=${`Reset APT ${a.apt}`} onClick=${() => setResetting(a)}>Reset</button>`}`} />

    ${resetting && html`<${Confirm} title=${`Reset APT ${resetting.apt}?`} confirmLabel=${`Reset APT ${resetting.apt}`} danger
        testId="reset-dialog" onClose=${() => setResetting(null)}
        onConfirm=${async () => {
          await api.post(`/apartments/${encodeURIComponent(resetting.id)}/reset`, {});
          invalidate('persons');
          notify(`APT ${resetting.apt} was reset.`);
        }}>
      <p>Resetting an apartment (for a new tenant) <strong>removes</strong>: family member accounts; emails, mobile numbers,
        country codes and landlines; door logs, call history and other logs (not the audit log); messages and alarms;
        PINs, face data, QR codes, Bluetooth and NFC access, and temp keys.</p>
      <p>It <strong>keeps</strong>: the master account and its status, the apartment's call settings, RF cards, UHF tags
        and licence plates, and the audit log. The app must be registered again.</p>
    </${Confirm}>`}
  </div>`;
}
