// Conflicts: local edits the cloud rejected (GET /api/v1/conflicts), the two
// versions side by side. The cloud's version is the one in force.
import * as api from '../api.js';
import { html, useSession, useAsync, PageHead, LoadError, fmtTime, brief } from '../lib/ui.js';

const parse = (v) => {
  if (typeof v !== 'string') return v;
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
};

function Versions({ local, cloud }) {
  const l = parse(local);
  const c = parse(cloud);
  const obj = (x) => x && typeof x === 'object' && !Array.isArray(x);
  if (!obj(l) || !obj(c)) {
    return html`<div class="side-by-side"><div><h4>Local edit</h4><pre>${JSON.stringify(l, null, 1)}</pre></div>
      <div><h4>Cloud</h4><pre>${JSON.stringify(c, null, 1)}</pre></div></div>`;
  }
  const keys = [...new Set([...Object.keys(l), ...Object.keys(c)])].sort();
  return html`<div class="table-wrap"><table class="data versions">
    <thead><tr><th scope="col">Field</th><th scope="col">Local edit (not applied)</th><th scope="col">Cloud (in force)</th></tr></thead>
    <tbody>${keys.map((k) => {
      const differs = JSON.stringify(l[k]) !== JSON.stringify(c[k]);
      return html`<tr class=${differs ? 'diff' : ''}>
        <th scope="row">${k}${differs && html`<span class="sr-only"> (differs)</span>`}</th>
        <td data-label="Local edit">${brief(l[k])}</td><td data-label="Cloud">${brief(c[k])}</td>
      </tr>`;
    })}</tbody>
  </table></div>`;
}

export function Conflicts() {
  const { settings } = useSession();
  const r = useAsync(() => api.list('/conflicts', { limit: 100 }), []);
  const items = (r.data && r.data.items) || [];
  return html`<div>
    <${PageHead} title="Conflicts" />
    <p class="lead">Local edits made while the cloud was unreachable that the cloud rejected. The cloud's version is in force;
      the local edit is kept here so you can make it again if it is still wanted. Highlighted rows differ.</p>
    <${LoadError} error=${r.error} retry=${r.reload} />
    ${r.loading && html`<p class="loading" role="status">Loading...</p>`}
    ${!r.loading && !r.error && !items.length && html`<p class="empty" data-test="conflicts-empty">No conflicts.</p>`}
    ${items.map((x) => html`<section class="card conflict" data-test="conflict" key=${x.id} aria-label=${`Conflict on ${x.entity} ${x.eid || x.id}`}>
      <h2>${x.entity} <code>${x.eid || x.entity_id || ''}</code></h2>
      <p class="help">${fmtTime(x.ts, settings)}${x.change_id ? `, change ${x.change_id}` : ''}${x.error ? `: ${brief(x.error)}` : ''}</p>
      <${Versions} local=${x.local} cloud=${x.cloud} />
    </section>`)}
    ${r.data && r.data.next && html`<p class="help">Only the first 100 conflicts are shown.</p>`}
  </div>`;
}
