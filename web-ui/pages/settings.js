// Settings: the site's settings entity (GET/PUT /api/v1/settings). Admin only edits.
import * as api from '../api.js';
import { html, useSession, can, useAsync, PageHead, LoadError, notify } from '../lib/ui.js';
import { Form } from '../lib/form.js';
import { RelayListPicker } from '../lib/pickers.js';

const zones = (() => {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return [];
  }
})();

function DoorsEditor(c) {
  const all = c.value === 'all' || c.value === null || c.value === undefined;
  return html`<div>
    <label class="radio"><input type="radio" name="em-doors" checked=${all} disabled=${c.disabled} data-test="emergency-doors-all-setting"
      onChange=${() => c.set('all')} /> All doors</label>
    <label class="radio"><input type="radio" name="em-doors" checked=${!all} disabled=${c.disabled} data-test="emergency-doors-chosen-setting"
      onChange=${() => c.set([])} /> Chosen doors</label>
    ${!all && html`<${RelayListPicker} ...${c} />`}
  </div>`;
}

const fields = [
  { name: 'name', label: 'Site name', maxLength: 128 },
  { name: 'address', label: 'Address', maxLength: 255 },
  { name: 'kind', label: 'Site kind', type: 'select', options: [['community', 'Residential community'], ['office', 'Office'], ['single_family', 'Single-family house']] },
  { name: 'timezone', label: 'Time zone', datalist: zones, maxLength: 63, help: 'An IANA name, e.g. Europe/Vienna. Every schedule runs on this clock.' },
  { name: 'date_format', label: 'Date format', type: 'select', options: [['YYYY-MM-DD', 'YYYY-MM-DD'], ['DD/MM/YYYY', 'DD/MM/YYYY'], ['MM/DD/YYYY', 'MM/DD/YYYY'], ['DD.MM.YYYY', 'DD.MM.YYYY']] },
  { name: 'time_format', label: 'Time format', type: 'select', options: [['24h', '24-hour'], ['12h', '12-hour']] },
  { name: 'feature_plan', label: 'Feature plan', type: 'select', options: [['basic', 'Basic'], ['premium', 'Premium']] },
  { name: 'pin_mode', label: 'PIN access mode', type: 'select', options: [['pin', 'PIN (unique on the site)'], ['apt_pin', 'APT + PIN (e.g. 101 + 1234)']] },
  { name: 'access_permission', label: 'Access control permission', type: 'select', options: [['public_private', 'Public and private areas'], ['public_only', 'Public areas only']] },
  { name: 'log_calls_without_open', label: 'Log calls that did not open a door', type: 'checkbox' },
  { name: 'temp_key_max_days', label: 'Temp key validity for residents', type: 'select', options: [[0, 'Unlimited'], [30, '30 days at most']] },
  { name: 'emergency.auto_unlock', label: 'Emergency: unlock the emergency doors at once on a fire alarm', type: 'checkbox' },
  { name: 'emergency.notify', label: 'Emergency: notify indoor monitors', type: 'checkbox' },
  { name: 'emergency.doors', label: 'Emergency door group', type: 'custom', fieldset: true, render: DoorsEditor },
  { name: 'lift_grant_s', label: 'Lift floors stay enabled for (seconds)', type: 'number', min: 1, max: 3600 },
  { name: 'relay_hold_ms', label: 'Door relay hold time (milliseconds)', type: 'number', min: 100, max: 600000 },
];

export function Settings() {
  const { role, setSettings } = useSession();
  const edit = can(role, 'site');
  const r = useAsync(() => api.get('/settings').then((s) => (s && s.items ? s.items[0] : s)), []);
  async function save(values) {
    const saved = await api.put('/settings', values);
    const s = saved || values;
    r.setData(s);
    setSettings(s);
    notify('Settings saved.');
  }
  return html`<div>
    <${PageHead} title="Settings" />
    ${!edit && html`<p class="lead">Only the installer (admin) can change the settings.</p>`}
    <${LoadError} error=${r.error} retry=${r.reload} />
    ${r.loading && html`<p class="loading" role="status">Loading...</p>`}
    ${r.data && html`<div class="panel"><${Form} key=${JSON.stringify(r.data)} fields=${fields} initial=${r.data}
      onSubmit=${save} readOnly=${!edit} submitLabel="Save settings" testId="settings-form" /></div>`}
  </div>`;
}
