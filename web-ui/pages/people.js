// People & credentials: persons (filter by apartment and kind), one person's
// credentials (#/people?person=ID), CSV import of the residents template.
import { useState } from '../vendor/hooks.module.js';
import * as api from '../api.js';
import {
  html, useSession, can, useAll, useEntity, PageHead, DataTable, LoadError, navigate, href,
  fmtTime, opts, personName, aptLabel, invalidate, CRED_TYPES, PERSON_KINDS,
} from '../lib/ui.js';
import { EntitySection } from '../lib/crud.js';
import { AptPicker } from '../lib/pickers.js';

const inApartment = (v) => v.kind === 'resident' || v.kind === 'family';

const personFields = (buildings) => [
  { name: 'kind', label: 'Kind', type: 'select', options: opts(PERSON_KINDS) },
  { name: 'apartment', label: 'Apartment', type: 'custom', showIf: inApartment, render: (c) => html`<${AptPicker} ...${c} />` },
  { name: 'building', label: 'Building or department', type: 'select', showIf: (v) => !inApartment(v),
    options: [[null, 'None'], ...buildings.items.map((b) => [b.id, b.name])] },
  { name: 'first_name', label: 'First name', required: true, maxLength: 64 },
  { name: 'last_name', label: 'Last name', maxLength: 64 },
  { name: 'id_number', label: 'ID (unique staff number)', showIf: (v) => v.kind === 'staff' || v.kind === 'personnel', nullIfEmpty: true },
  { name: 'email', label: 'Email', type: 'email', nullIfEmpty: true },
  { name: 'country_code', label: 'Telephone calling code', nullIfEmpty: true, maxLength: 8, help: 'e.g. 1 or 44' },
  { name: 'mobile', label: 'Mobile number', type: 'tel', nullIfEmpty: true },
  { name: 'landlines', label: 'Landlines', type: 'list', help: 'Up to 3 numbers, separated by commas.' },
  { name: 'floors', label: 'Accessible floors', type: 'list', help: 'Up to 10 floors for the lift, separated by commas (e.g. 3, G0), or All.' },
  { name: 'remark', label: 'Remark', type: 'textarea', maxLength: 255, help: 'At most 255 characters, e.g. tenant.' },
  { name: 'active', label: 'Active (may open doors)', type: 'checkbox' },
  { name: 'expires_at', label: 'Account expires', type: 'datetime', help: 'Empty = never.' },
  { name: 'app_account', label: 'App / SIP account', nullIfEmpty: true },
];

function beforeSavePerson(v) {
  const out = { ...v };
  if (Array.isArray(out.floors) && out.floors.some((f) => f.toLowerCase() === 'all')) out.floors = ['all'];
  if (inApartment(out)) delete out.building;
  else out.apartment = null;
  return out;
}

const credentialFields = [
  { name: 'type', label: 'Type', type: 'select', options: opts(CRED_TYPES) },
  { name: 'code', label: 'Code', required: true, maxLength: 128,
    help: 'PIN: 2-8 digits, not starting with 9. RF card or UHF tag: its number (letters and digits). Licence plate: as the camera reads it.' },
  { name: 'long_term', label: 'Long-term vehicle (no entry window)', type: 'checkbox', showIf: (v) => v.type === 'plate' },
  { name: 'valid_from', label: 'Valid from', type: 'datetime' },
  { name: 'valid_until', label: 'Valid until', type: 'datetime', help: 'Empty = no limit. A plate that is not long-term needs both.' },
];

function AptName({ id }) {
  const a = useEntity('apartments', id);
  const buildings = useAll('buildings');
  return id ? html`<span>${a.data ? aptLabel(a.data, buildings.byId) : id}</span>` : '';
}

export function People({ query }) {
  return query.person ? html`<${PersonDetail} id=${query.person} />` : html`<${PersonList} query=${query} />`;
}

function PersonList({ query }) {
  const { role } = useSession();
  const edit = can(role, 'people');
  const buildings = useAll('buildings');
  const [round, setRound] = useState(0);
  const filter = {};
  if (query.apartment) filter.apartment = query.apartment;
  if (query.kind) filter.kind = query.kind;
  const setFilter = (k, v) => navigate('people', { ...query, [k]: v || undefined });

  return html`<div>
    <${PageHead} title="People & credentials" focus />
    <${EntitySection} key=${round} entities="persons" title="People" singular="person" canEdit=${edit}
      query=${filter} name=${personName} fields=${personFields(buildings)} beforeSave=${beforeSavePerson}
      defaults=${{ kind: query.apartment ? 'resident' : 'staff', apartment: query.apartment || null, active: true, landlines: [], floors: [] }}
      toolbar=${html`<div class="filters">
        <div class="sub-field">
          <label for="people-filter-apt">Apartment</label>
          <${AptPicker} id="people-filter-apt" value=${query.apartment || null} set=${(v) => setFilter('apartment', v)}
            common=${{ id: 'people-filter-apt', 'data-test': 'filter-apartment' }} />
        </div>
        <div class="sub-field">
          <label for="people-filter-kind">Kind</label>
          <select id="people-filter-kind" data-test="filter-kind" value=${query.kind || ''} onChange=${(e) => setFilter('kind', e.target.value)}>
            <option value="">All kinds</option>
            ${opts(PERSON_KINDS).map(([k, l]) => html`<option value=${k}>${l}</option>`)}
          </select>
        </div>
      </div>`}
      columns=${[
        { label: 'Name', render: (p) => html`<a href=${href('people', { person: p.id })}>${personName(p)}</a>` },
        { label: 'Kind', render: (p) => PERSON_KINDS[p.kind] || p.kind },
        { label: 'Apartment', render: (p) => html`<${AptName} id=${p.apartment} />` },
        { label: 'Active', render: (p) => (p.active === false ? 'No' : 'Yes') },
      ]}
      actions=${(p) => html`<a class="button-link" href=${href('people', { person: p.id })} data-test="show-credentials"
        aria-label=${`Credentials of ${personName(p)}`}>Credentials</a>`} />
    ${edit && html`<${Import} onDone=${() => { invalidate(); setRound(round + 1); }} />`}
  </div>`;
}

function PersonDetail({ id }) {
  const { role, settings } = useSession();
  const p = useEntity('persons', id);
  const person = p.data;
  return html`<div>
    <${PageHead} title=${person ? personName(person) : 'Person'} focus>
      <a href=${href('people', person && person.apartment ? { apartment: person.apartment } : {})} data-test="back-to-people">Back to people</a>
    </${PageHead}>
    <${LoadError} error=${p.error} retry=${p.reload} />
    ${person && html`<dl class="facts">
      <dt>Kind</dt><dd>${PERSON_KINDS[person.kind] || person.kind}</dd>
      ${person.apartment && html`<dt>Apartment</dt><dd><${AptName} id=${person.apartment} /></dd>`}
      ${person.email && html`<dt>Email</dt><dd>${person.email}</dd>`}
      ${person.mobile && html`<dt>Mobile</dt><dd>${person.country_code ? `+${person.country_code} ` : ''}${person.mobile}</dd>`}
      <dt>Accessible floors</dt><dd>${(person.floors || []).join(', ') || 'none'}</dd>
      <dt>Active</dt><dd>${person.active === false ? 'No' : 'Yes'}${person.expires_at ? `, until ${fmtTime(person.expires_at, settings)}` : ''}</dd>
    </dl>`}
    <${EntitySection} entities="credentials" title="Credentials" singular="credential" canEdit=${can(role, 'people')}
      query=${{ person: id }} defaults=${{ person: id, type: 'pin', long_term: true }} fields=${credentialFields}
      name=${(c) => `${CRED_TYPES[c.type] || c.type} ${c.code}`} addLabel="Add credential"
      columns=${[
        { label: 'Type', render: (c) => CRED_TYPES[c.type] || c.type },
        { label: 'Code', render: (c) => html`<code>${c.code}</code>` },
        { label: 'Valid from', render: (c) => fmtTime(c.valid_from, settings) },
        { label: 'Valid until', render: (c) => (c.valid_until ? fmtTime(c.valid_until, settings) : c.type === 'plate' && c.long_term !== false ? 'long-term' : '') },
      ]} />
  </div>`;
}

/* ---- CSV import (docs/IMPORT.md): POST /api/v1/import/residents, text/csv ---- */

function Import({ onDone }) {
  const [file, setFile] = useState(null);
  const [partial, setPartial] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  const [report, setReport] = useState(null);
  async function run(e) {
    e.preventDefault();
    setError('');
    setReport(null);
    if (!file) {
      setError('Choose a CSV file first.');
      document.getElementById('import-file').focus();
      return;
    }
    setBusy(true);
    try {
      const r = await api.post(`/import/residents${partial ? '?partial=1' : ''}`, file, { type: 'text/csv' });
      setReport(r || {});
      onDone();
    } catch (err) {
      // a refused import answers 422 with the report itself as the body
      const body = err.body || {};
      const rep = body.report || (Array.isArray(body.errors) ? body : null);
      if (rep) setReport({ ...rep, refused: true, message: body.error && body.error.message });
      else setError(err.message);
    }
    setBusy(false);
  }
  return html`<section class="section" aria-labelledby="import-head">
    <div class="section-head"><h2 id="import-head">Import residents (CSV)</h2></div>
    <p>Use the residents template of the manuals, saved from a spreadsheet as <strong>CSV UTF-8</strong> (comma separated).
      Columns are matched by name: Building, Apt and First Name are required. <a href="residents-template.txt" download="residents-template.csv" data-test="import-template">Download the template</a>.</p>
    <form onSubmit=${run} novalidate data-test="import-form">
      <div class="field">
        <label for="import-file">CSV file</label>
        <input type="file" id="import-file" data-test="import-file" accept=".csv,text/csv"
          onChange=${(e) => setFile(e.target.files[0] || null)} aria-describedby="import-error" />
      </div>
      <div class="field check">
        <input type="checkbox" id="import-partial" data-test="import-partial" checked=${partial} onChange=${(e) => setPartial(e.target.checked)} />
        <label for="import-partial">Keep the good rows when some rows fail</label>
        <p class="help">Otherwise nothing is stored unless every row is valid.</p>
      </div>
      <div id="import-error" class="form-error" role="alert">${error}</div>
      <div class="actions"><button type="submit" class="primary" data-test="import-submit" disabled=${busy}>${busy ? 'Importing...' : 'Import'}</button></div>
    </form>
    <div aria-live="polite">${report && html`<${Report} r=${report} />`}</div>
  </section>`;
}

const COUNTS = [['rows', 'Rows read'], ['imported', 'Imported'], ['created', 'Created'], ['updated', 'Updated'], ['failed', 'Failed']];

function Report({ r }) {
  const errors = r.errors || [];
  const warnings = r.warnings || [];
  const ok = r.ok !== undefined ? r.ok && !r.refused : !r.refused && !errors.length;
  const cols = [
    { label: 'Line', render: (x) => x.line ?? '' },
    { label: 'Column', render: (x) => x.field || '' },
    { label: 'Problem', render: (x) => x.message || x.code || '' },
  ];
  return html`<div class=${ok ? 'report ok' : 'report bad'} data-test="import-report">
    <h3>${ok ? 'Import finished' : r.refused && !r.imported ? 'Nothing was imported' : 'Import finished with errors'}</h3>
    ${r.refused && r.message && html`<p>${r.message}</p>`}
    <dl class="facts">${COUNTS.filter(([k]) => r[k] !== undefined).map(([k, l]) => html`<dt>${l}</dt><dd data-test=${`import-${k}`}>${r[k]}</dd>`)}</dl>
    ${errors.length > 0 && html`<h4>Errors</h4><${DataTable} testId="import-errors" caption="Import errors" columns=${cols} rows=${errors} />`}
    ${warnings.length > 0 && html`<h4>Warnings</h4><${DataTable} testId="import-warnings" caption="Import warnings" columns=${cols} rows=${warnings} />`}
    ${r.truncated && html`<p>Only the first 1000 problems are listed.</p>`}
  </div>`;
}
