// OpAMP fleet dashboard: vanilla JavaScript over the JSON API (/api), live through
// Server-Sent Events (/api/events). Every value from the server is inserted as text, never
// as HTML.
'use strict';

const main = document.getElementById('main');

// ---------- helpers ----------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fill(id, ...children) {
  const el = document.getElementById(id);
  if (!el) return;
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

async function api(method, path, body) {
  // X-Requested-With: a header no page of another origin can send here (the server refuses
  // state-changing requests without same-origin evidence, see src/api/guard.rs).
  const opts = { method, headers: { 'X-Requested-With': 'opamp-fleet-dashboard' }, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch('/api' + path, opts);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { error: text }; }
  if (!resp.ok) {
    const err = new Error((data && data.error) || resp.statusText);
    err.status = resp.status;
    err.kind = data && data.kind;
    throw err;
  }
  return data;
}

function toast(msg) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 2500);
}

function ago(ms) {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  if (s < 86400) return Math.round(s / 3600) + ' h ago';
  return new Date(ms).toLocaleString();
}

function when(ms) { return ms ? new Date(ms).toLocaleString() : '—'; }
function nanos(ns) { return ns ? new Date(Number(ns) / 1e6).toLocaleString() : '—'; }
function short(hash) { return hash ? hash.slice(0, 12) : '—'; }
function badge(text, cls) { return h('span', { class: 'badge ' + (cls || String(text).toLowerCase()) }, text); }
function attr(a, ...keys) { for (const k of keys) if (a[k]) return a[k]; return ''; }

function kvTable(obj) {
  const keys = Object.keys(obj || {});
  if (!keys.length) return h('p', { class: 'muted' }, 'none');
  return h('table', { class: 'kv' }, keys.map((k) => h('tr', {}, h('td', {}, k), h('td', { class: 'mono' }, obj[k]))));
}

// ---------- routing and live updates ----------
let current = { refresh: async () => {} };
let pending = null;

function scheduleRefresh() {
  if (pending) return;
  pending = setTimeout(async () => {
    pending = null;
    try { await current.refresh(); } catch (e) { console.warn(e); }
  }, 250);
}

function connectEvents() {
  const live = document.getElementById('live');
  const es = new EventSource('/api/events');
  const on = () => { live.textContent = 'live'; live.className = 'live on'; };
  es.onopen = on;
  es.onerror = () => { live.textContent = 'reconnecting'; live.className = 'live off'; };
  for (const kind of ['agent', 'config', 'rollout', 'audit', 'resync']) {
    es.addEventListener(kind, () => { on(); scheduleRefresh(); });
  }
}

async function route() {
  const hash = location.hash || '#/';
  for (const id of ['nav-agents', 'nav-configs', 'nav-audit']) document.getElementById(id).classList.remove('active');
  let m;
  if ((m = hash.match(/^#\/agent\/(.+)$/))) {
    document.getElementById('nav-agents').classList.add('active');
    current = agentPage(decodeURIComponent(m[1]));
  } else if ((m = hash.match(/^#\/config\/(.+)$/))) {
    document.getElementById('nav-configs').classList.add('active');
    current = configPage(decodeURIComponent(m[1]));
  } else if (hash === '#/configs') {
    document.getElementById('nav-configs').classList.add('active');
    current = configsPage();
  } else if (hash === '#/audit') {
    document.getElementById('nav-audit').classList.add('active');
    current = auditPage();
  } else {
    document.getElementById('nav-agents').classList.add('active');
    current = overviewPage();
  }
  try { await current.refresh(); } catch (e) { fill('main', h('p', { class: 'error' }, e.message)); }
}

// ---------- fleet overview ----------
const FILTERS = [
  ['environment', 'Environment', ['environment', 'deployment.environment', 'deployment.environment.name']],
  ['region', 'Region', ['region', 'cloud.region']],
  ['service', 'Service name', ['service.name']],
  ['version', 'Version', ['service.version']],
];

function overviewPage() {
  const state = { agents: [], filters: {}, text: '', status: '', selector: '' };
  main.replaceChildren(
    h('h2', {}, 'Fleet overview'),
    h('div', { class: 'cards', id: 'summary' }),
    h('div', { class: 'panel' },
      h('div', { class: 'filters', id: 'filters' }),
      h('div', { id: 'selector-error', class: 'error' }),
      h('div', { id: 'agents' })));

  const filterBar = document.getElementById('filters');
  for (const [key, label] of FILTERS) {
    filterBar.append(h('label', {}, label, h('select', { id: 'filter-' + key, onchange: (e) => { state.filters[key] = e.target.value; draw(); } },
      h('option', { value: '' }, 'all'))));
  }
  filterBar.append(
    h('label', {}, 'Status', h('select', { id: 'filter-status', onchange: (e) => { state.status = e.target.value; draw(); } },
      ['', 'healthy', 'unhealthy', 'unknown', 'offline'].map((s) => h('option', { value: s }, s || 'all')))),
    h('label', {}, 'Label selector', h('input', { id: 'filter-selector', placeholder: 'environment=prod,region=eu', size: 28,
      onchange: (e) => { state.selector = e.target.value.trim(); refresh(); } })),
    h('label', {}, 'Search', h('input', { id: 'filter-text', placeholder: 'any attribute or id', oninput: (e) => { state.text = e.target.value.toLowerCase(); draw(); } })));

  function options(key, keys) {
    const sel = document.getElementById('filter-' + key);
    const values = [...new Set(state.agents.map((a) => attr(a.attributes, ...keys)).filter(Boolean))].sort();
    const keep = sel.value;
    sel.replaceChildren(h('option', { value: '' }, 'all'), ...values.map((v) => h('option', { value: v }, v)));
    sel.value = values.includes(keep) ? keep : '';
    state.filters[key] = sel.value;
  }

  function draw() {
    const rows = state.agents.filter((a) => {
      for (const [key, , keys] of FILTERS) {
        if (state.filters[key] && attr(a.attributes, ...keys) !== state.filters[key]) return false;
      }
      if (state.status && a.status !== state.status) return false;
      if (state.text && !(a.instance_uid.includes(state.text) ||
        Object.values(a.attributes).some((v) => String(v).toLowerCase().includes(state.text)))) return false;
      return true;
    });
    fill('agents', h('table', { id: 'agent-table' },
      h('thead', {}, h('tr', {}, ['Name', 'Instance ID', 'Status', 'Environment', 'Region', 'Version', 'Configuration', 'Config status', 'Transport', 'Last seen'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows.length ? rows.map((a) => h('tr', { 'data-uid': a.instance_uid },
        h('td', {}, h('a', { href: '#/agent/' + encodeURIComponent(a.instance_uid) }, a.name)),
        h('td', { class: 'mono' }, a.instance_uid),
        h('td', {}, badge(a.status)),
        h('td', {}, attr(a.attributes, ...FILTERS[0][2])),
        h('td', {}, attr(a.attributes, ...FILTERS[1][2])),
        h('td', {}, a.version),
        h('td', {}, a.assigned_config ? h('a', { href: '#/config/' + encodeURIComponent(a.assigned_config) }, a.assigned_config) : '—'),
        h('td', { class: 'config-status' }, a.remote_config_status ? badge(a.remote_config_status) : '—'),
        h('td', {}, a.transport || '—'),
        h('td', {}, ago(a.last_seen)))) : h('tr', {}, h('td', { colspan: 10, class: 'muted' }, 'No agent matches. Agents connect to the OpAMP endpoint (default ws://127.0.0.1:4320/v1/opamp).')))));
  }

  async function refresh() {
    const [summary, list] = await Promise.all([
      api('GET', '/summary'),
      api('GET', '/agents?selector=' + encodeURIComponent(state.selector)).catch((e) => {
        fill('selector-error', e.message);
        return null;
      }),
    ]);
    fill('summary', [['total', 'Total'], ['healthy', 'Healthy'], ['unhealthy', 'Unhealthy'], ['offline', 'Offline'], ['unknown', 'Health unknown']]
      .map(([k, l]) => h('div', { class: 'card ' + k }, h('div', { class: 'n', id: 'sum-' + k }, summary[k]), h('div', { class: 'l' }, l))));
    if (!list) return;
    fill('selector-error');
    state.agents = list.agents;
    for (const [key, , keys] of FILTERS) options(key, keys);
    draw();
  }
  return { refresh };
}

// ---------- agent page ----------
function healthTree(name, hnode) {
  return h('li', {},
    badge(hnode.healthy ? 'healthy' : 'unhealthy'), ' ', h('strong', {}, name || 'agent'),
    hnode.status ? h('span', { class: 'muted' }, ' — ' + hnode.status) : null,
    hnode.last_error ? h('div', { class: 'error' }, hnode.last_error) : null,
    hnode.start_time_unix_nano ? h('div', { class: 'muted' }, 'up since ' + nanos(hnode.start_time_unix_nano)) : null,
    Object.keys(hnode.attributes || {}).length ? kvTable(hnode.attributes) : null,
    Object.keys(hnode.components || {}).length
      ? h('ul', { class: 'tree' }, Object.entries(hnode.components).map(([k, v]) => healthTree(k, v))) : null);
}

function componentTree(components) {
  return h('ul', { class: 'tree' }, Object.entries(components).map(([k, v]) => h('li', {}, h('strong', {}, k),
    Object.keys(v.metadata || {}).length ? h('span', { class: 'muted' }, ' ' + Object.entries(v.metadata).map(([a, b]) => a + '=' + b).join(', ')) : null,
    Object.keys(v.components || {}).length ? componentTree(v.components) : null)));
}

function agentPage(uid) {
  const enc = encodeURIComponent(uid);
  let agent = null;
  main.replaceChildren(
    h('p', {}, h('a', { href: '#/' }, '← all agents')),
    h('h2', { id: 'agent-title' }, uid),
    h('div', { class: 'grid' },
      h('div', {},
        h('div', { class: 'panel' }, h('h3', {}, 'Connection'), h('div', { id: 'conn' })),
        h('div', { class: 'panel' }, h('h3', {}, 'Identifying attributes'), h('div', { id: 'ident' })),
        h('div', { class: 'panel' }, h('h3', {}, 'Non-identifying attributes'), h('div', { id: 'nonident' })),
        h('div', { class: 'panel' }, h('h3', {}, 'Health'), h('div', { id: 'health' })),
        h('div', { class: 'panel' }, h('h3', {}, 'Packages'), h('div', { id: 'packages' })),
        h('div', { class: 'panel' }, h('h3', {}, 'Available components'), h('div', { id: 'components' })),
        h('div', { class: 'panel' }, h('h3', {}, 'Custom messages received'), h('div', { id: 'custom-in' }))),
      h('div', {},
        h('div', { class: 'panel' }, h('h3', {}, 'Operator labels (trusted)'),
          h('p', { class: 'muted' }, 'Set here, never by the agent; selectors match them as label:KEY.'),
          h('div', { id: 'labels' }),
          h('div', { class: 'row' },
            h('input', { id: 'labels-input', size: 40, placeholder: 'environment=prod, region=eu' }),
            h('button', { id: 'labels-save', onclick: saveLabels }, 'Save labels')),
          h('div', { id: 'labels-error', class: 'error' })),
        h('div', { class: 'panel' }, h('h3', {}, 'Remote configuration'), h('div', { id: 'remote' })),
        h('div', { class: 'panel' }, h('h3', {}, 'Push a configuration to this agent'),
          h('div', { class: 'row' },
            h('label', {}, 'File name ', h('input', { id: 'config-file', placeholder: '(single file)', size: 16 })),
            h('label', {}, 'Format ', h('select', { id: 'config-type' },
              h('option', { value: 'text/yaml' }, 'YAML'), h('option', { value: 'application/json' }, 'JSON')))),
          h('textarea', { id: 'config-body', rows: 14, spellcheck: 'false', placeholder: 'receivers:\n  otlp:\n    protocols:\n      grpc: {}' }),
          h('div', { class: 'row' },
            h('button', { id: 'config-push', onclick: push }, 'Validate and push'),
            h('button', { class: 'secondary', id: 'config-load', onclick: loadEffective }, 'Load effective config'),
            h('button', { class: 'secondary', id: 'config-clear', onclick: clearOverride }, 'Remove agent config'),
            h('button', { class: 'secondary', id: 'config-retry', onclick: retry }, 'Retry failed')),
          h('div', { id: 'config-error', class: 'error' }),
          h('div', { id: 'config-ok', class: 'ok-text' })),
        h('div', { class: 'panel' }, h('h3', {}, 'Actions'), h('div', { id: 'actions' })),
        h('div', { class: 'panel' }, h('h3', {}, 'Effective configuration'), h('div', { id: 'effective' })))));

  async function push() {
    fill('config-error'); fill('config-ok');
    const files = { [document.getElementById('config-file').value]: {
      content_type: document.getElementById('config-type').value,
      body: document.getElementById('config-body').value } };
    try {
      await api('POST', '/validate', { files });
    } catch (e) {
      fill('config-error', 'Not sent: ' + e.message);
      return;
    }
    try {
      const offer = await api('PUT', '/agents/' + enc + '/config', { files });
      fill('config-ok', 'Offered configuration ' + short(offer.hash) + '; waiting for the agent to report its status.');
      toast('Configuration pushed');
      await refresh();
    } catch (e) { fill('config-error', e.message); }
  }
  function loadEffective() {
    const files = (agent && agent.effective_config) || {};
    const [name, file] = Object.entries(files)[0] || ['', null];
    if (!file) { toast('No effective configuration reported'); return; }
    document.getElementById('config-file').value = name;
    document.getElementById('config-type').value = /json/.test(file.content_type) ? 'application/json' : 'text/yaml';
    document.getElementById('config-body').value = file.body;
  }
  async function act(method, path, body, done) {
    try { await api(method, '/agents/' + enc + path, body); toast(done); await refresh(); } catch (e) { toast('Error: ' + e.message); throw e; }
  }
  async function saveLabels() {
    fill('labels-error');
    const labels = {};
    for (const part of document.getElementById('labels-input').value.split(',')) {
      if (!part.trim()) continue;
      const i = part.indexOf('=');
      if (i < 0) { fill('labels-error', 'Not saved: write key=value pairs separated by commas'); return; }
      labels[part.slice(0, i).trim()] = part.slice(i + 1).trim();
    }
    try { await act('PUT', '/labels', { labels }, 'Labels saved'); } catch (e) { fill('labels-error', 'Not saved: ' + e.message); }
  }
  async function clearOverride() { await act('DELETE', '/config', undefined, 'Agent configuration removed').catch(() => {}); }
  async function retry() { await act('POST', '/config/retry', undefined, 'Failed configurations will be offered again').catch(() => {}); }

  function drawActions(a) {
    const caps = a.capability_names || [];
    const online = a.status !== 'offline';
    const out = [];
    const row = h('div', { class: 'row' });
    if (caps.includes('ACCEPTS_RESTART_COMMAND')) {
      row.append(h('button', { id: 'action-restart', class: 'danger', disabled: !online,
        onclick: () => { if (confirm('Restart this agent?')) act('POST', '/restart', undefined, 'Restart sent').catch(() => {}); } }, 'Restart'));
    }
    row.append(h('button', { id: 'action-full-state', class: 'secondary', disabled: !online,
      onclick: () => act('POST', '/full-state', undefined, 'Full state requested').catch(() => {}) }, 'Request full state'));
    out.push(row);
    if (caps.includes('ACCEPTS_OPAMP_CONNECTION_SETTINGS')) {
      out.push(h('details', {}, h('summary', {}, 'OpAMP connection settings'),
        h('div', { class: 'row' }, h('label', {}, 'Heartbeat (s) ', h('input', { id: 'cs-heartbeat', type: 'number', min: 0, max: 86400, size: 6 }))),
        h('div', { class: 'row' }, h('label', {}, 'New endpoint ', h('input', { id: 'cs-endpoint', size: 40, placeholder: 'this server' }))),
        h('div', { class: 'row' }, h('label', {}, h('input', { id: 'cs-rotate', type: 'checkbox' }), ' issue and offer a new client certificate')),
        h('button', { id: 'cs-offer', disabled: !online, onclick: async () => {
          const hb = document.getElementById('cs-heartbeat').value;
          const ep = document.getElementById('cs-endpoint').value.trim();
          const opamp = { rotate_client_certificate: document.getElementById('cs-rotate').checked };
          if (hb !== '') opamp.heartbeat_interval_seconds = Number(hb);
          if (ep) opamp.destination_endpoint = ep;
          await act('POST', '/connection-settings', { opamp }, 'Connection settings offered').catch(() => {});
        } }, 'Offer')));
    }
    const tele = [['own_metrics', 'REPORTS_OWN_METRICS', 'metrics'], ['own_traces', 'REPORTS_OWN_TRACES', 'traces'], ['own_logs', 'REPORTS_OWN_LOGS', 'logs']]
      .filter(([, cap]) => caps.includes(cap));
    if (tele.length) {
      out.push(h('details', {}, h('summary', {}, 'Own telemetry destinations'),
        tele.map(([key, , label]) => h('div', { class: 'row' }, h('label', {}, label + ' ', h('input', { id: 'tel-' + key, size: 40, placeholder: 'https://collector:4318/v1/' + label })))),
        h('button', { id: 'tel-offer', disabled: !online, onclick: async () => {
          const body = {};
          for (const [key] of tele) {
            const v = document.getElementById('tel-' + key).value.trim();
            if (v) body[key] = { destination_endpoint: v };
          }
          await act('POST', '/connection-settings', body, 'Telemetry destinations offered').catch(() => {});
        } }, 'Offer')));
    }
    const custom = a.custom_capabilities || [];
    if (custom.length) {
      out.push(h('details', {}, h('summary', {}, 'Send a custom message'),
        h('div', { class: 'row' }, h('label', {}, 'Capability ', h('select', { id: 'cm-cap' }, custom.map((c) => h('option', { value: c }, c))))),
        h('div', { class: 'row' }, h('label', {}, 'Type ', h('input', { id: 'cm-type', size: 20 }))),
        h('textarea', { id: 'cm-data', rows: 3 }),
        h('button', { id: 'cm-send', disabled: !online, onclick: () => act('POST', '/custom-message', {
          capability: document.getElementById('cm-cap').value,
          type: document.getElementById('cm-type').value,
          data: document.getElementById('cm-data').value,
        }, 'Custom message sent').catch(() => {}) }, 'Send')));
    }
    return out;
  }

  async function refresh() {
    let a;
    try { a = await api('GET', '/agents/' + enc); } catch (e) {
      fill('agent-title', e.status === 404 ? 'Unknown agent ' + uid : e.message);
      return;
    }
    agent = a;
    const c = a.connection || {};
    fill('agent-title', (a.identifying['service.name'] || a.instance_uid) + ' ', badge(a.status));
    fill('conn', kvTable({
      'Instance ID': a.instance_uid,
      'Connected': c.connected ? 'yes' : 'no',
      'Transport': c.transport || '—',
      'Remote address': c.remote_addr || '—',
      'Connected since': when(c.connected_since),
      'Last seen': when(c.last_seen) + ' (' + ago(c.last_seen) + ')',
      'Sequence number': String(c.sequence_num),
      'First seen': when(a.first_seen),
      'Capabilities': (a.capability_names || []).join(', '),
      'Custom capabilities': (a.custom_capabilities || []).join(', ') || '—',
    }));
    fill('labels', kvTable(a.labels));
    if (!refresh.labelsShown) {
      refresh.labelsShown = true;
      document.getElementById('labels-input').value = Object.entries(a.labels || {}).map(([k, v]) => k + '=' + v).join(', ');
    }
    fill('ident', kvTable(a.identifying));
    fill('nonident', kvTable(a.non_identifying));
    fill('health', a.health ? h('ul', { class: 'tree tree-root' }, healthTree('', a.health)) : h('p', { class: 'muted' }, 'not reported'));
    const st = a.remote_config_status;
    const offered = a.offered;
    fill('remote', kvTable({
      'Status': st ? st.status : 'not reported',
      'Reported hash': st ? st.hash : '—',
      'Error': st && st.error ? st.error : '—',
      'Assigned configuration': a.assigned_config || '—',
      'Offered': offered ? short(offered.hash) + ' from ' + offered.source : '—',
      'Agent configuration': a.override_config ? short(a.override_config.hash) : 'none',
      'Rollout phase': a.rollout ? a.rollout.phase + (a.rollout.batch ? ' (batch ' + a.rollout.batch + ')' : '') : '—',
      'Failed hashes': (a.failed_hashes || []).map(short).join(', ') || 'none',
    }), st ? h('p', {}, 'Status: ', h('span', { id: 'remote-status' }, badge(st.status))) : null);
    const eff = a.effective_config || {};
    const over = a.oversized || [];
    fill('effective', over.length ? h('div', { class: 'error', id: 'oversized' }, 'Not stored (over the per-agent limit): ' + over.join('; ')) : null,
      Object.keys(eff).length
      ? Object.entries(eff).map(([name, f]) => [h('div', { class: 'muted' }, (name || '(single file)') + ' — ' + (f.content_type || 'unknown type')), h('pre', { class: 'effective-body' }, f.body)])
      : h('p', { class: 'muted' }, 'not reported'));
    const pk = a.package_statuses;
    fill('packages', pk && Object.keys(pk.packages).length ? h('table', {},
      h('tr', {}, ['Package', 'Has', 'Offered', 'Status', 'Error'].map((t) => h('th', {}, t))),
      Object.entries(pk.packages).map(([n, p]) => h('tr', {}, h('td', {}, n), h('td', {}, p.agent_has_version), h('td', {}, p.server_offered_version),
        h('td', {}, p.status + (p.download_percent != null ? ' ' + Math.round(p.download_percent) + '%' : '')), h('td', { class: 'error' }, p.error))))
      : h('p', { class: 'muted' }, 'none reported'));
    const comp = a.available_components;
    fill('components', comp && Object.keys(comp.components).length ? componentTree(comp.components)
      : h('p', { class: 'muted' }, comp ? 'hash ' + short(comp.hash) + ' (details not reported)' : 'not reported'));
    const msgs = a.custom_messages || [];
    fill('custom-in', msgs.length ? h('table', {}, msgs.slice().reverse().map((m) => h('tr', {},
      h('td', {}, ago(m.received_at)), h('td', {}, m.capability + ' / ' + m.type), h('td', { class: 'mono' }, m.data)))) : h('p', { class: 'muted' }, 'none'));
    // Actions are redrawn only when what they depend on changes, so typing is not lost.
    const key = JSON.stringify([a.capability_names, a.status === 'offline', a.custom_capabilities]);
    if (key !== drawActions.key) {
      drawActions.key = key;
      fill('actions', drawActions(a));
    }
  }
  drawActions.key = null;
  return { refresh };
}

// ---------- configurations ----------
function configForm(cfg, onSubmit) {
  const file = cfg ? Object.entries(cfg.files)[0] : ['', { content_type: 'text/yaml', body: '' }];
  const strategy = (cfg && cfg.rollout.strategy) || { kind: 'all' };
  const form = h('div', { class: 'panel', id: 'config-form' },
    h('h3', {}, cfg ? 'Edit ' + cfg.name : 'New configuration'),
    cfg ? null : h('div', { class: 'row' }, h('label', {}, 'Name ', h('input', { id: 'cf-name', size: 24, placeholder: 'prod-eu' }))),
    h('div', { class: 'row' }, h('label', {}, 'Selector ', h('input', { id: 'cf-selector', size: 40, value: cfg ? cfg.selector : '', placeholder: 'environment=prod,region=eu' })),
      h('label', {}, 'Priority ', h('input', { id: 'cf-priority', type: 'number', size: 5, value: cfg ? cfg.priority : 0 }))),
    h('div', { class: 'row' }, h('label', {}, 'Description ', h('input', { id: 'cf-description', size: 60, value: cfg ? cfg.description : '' }))),
    h('div', { class: 'row' },
      h('label', {}, 'Rollout ', h('select', { id: 'cf-strategy' },
        h('option', { value: 'all' }, 'all at once'), h('option', { value: 'batch' }, 'batches of N agents'), h('option', { value: 'percent' }, 'batches of N %'))),
      h('label', {}, 'N ', h('input', { id: 'cf-n', type: 'number', min: 1, size: 5, value: strategy.size || strategy.percent || '' })),
      h('label', {}, 'Halt after more than ', h('input', { id: 'cf-maxfail', type: 'number', min: 0, size: 5, value: cfg && cfg.rollout.max_failures != null ? cfg.rollout.max_failures : '' }), ' failures'),
      h('label', {}, h('input', { id: 'cf-healthy', type: 'checkbox', checked: !cfg || cfg.rollout.require_healthy }), ' wait for healthy')),
    h('div', { class: 'row' },
      h('label', {}, 'File name ', h('input', { id: 'cf-file', size: 16, value: file[0], placeholder: '(single file)' })),
      h('label', {}, 'Format ', h('select', { id: 'cf-type' }, h('option', { value: 'text/yaml' }, 'YAML'), h('option', { value: 'application/json' }, 'JSON')))),
    h('textarea', { id: 'cf-body', rows: 16, spellcheck: 'false' }),
    h('div', { class: 'row' }, h('button', { id: 'cf-save', onclick: submit }, cfg ? 'Validate and save' : 'Validate and create')),
    h('div', { id: 'cf-error', class: 'error' }));
  form.querySelector('#cf-body').value = file[1].body;
  form.querySelector('#cf-type').value = /json/.test(file[1].content_type) ? 'application/json' : 'text/yaml';
  form.querySelector('#cf-strategy').value = strategy.kind;

  async function submit() {
    fill('cf-error');
    const kind = form.querySelector('#cf-strategy').value;
    const n = Number(form.querySelector('#cf-n').value || 0);
    const maxfail = form.querySelector('#cf-maxfail').value;
    const input = {
      description: form.querySelector('#cf-description').value,
      selector: form.querySelector('#cf-selector').value.trim(),
      priority: Number(form.querySelector('#cf-priority').value || 0),
      files: { [form.querySelector('#cf-file').value]: { content_type: form.querySelector('#cf-type').value, body: form.querySelector('#cf-body').value } },
      rollout: {
        strategy: kind === 'batch' ? { kind, size: n } : kind === 'percent' ? { kind, percent: n } : { kind: 'all' },
        max_failures: maxfail === '' ? null : Number(maxfail),
        require_healthy: form.querySelector('#cf-healthy').checked,
      },
    };
    if (!cfg) input.name = form.querySelector('#cf-name').value.trim();
    try {
      await onSubmit(input);
    } catch (e) { fill('cf-error', 'Not saved: ' + e.message); }
  }
  return form;
}

function configsPage() {
  main.replaceChildren(h('h2', {}, 'Configurations'), h('div', { class: 'panel', id: 'config-list' }),
    configForm(null, async (input) => {
      const c = await api('POST', '/configs', input);
      toast('Configuration created');
      location.hash = '#/config/' + encodeURIComponent(c.name);
    }));
  async function refresh() {
    const [{ configs }, { rollouts }] = await Promise.all([api('GET', '/configs'), api('GET', '/rollouts')]);
    const byName = Object.fromEntries(rollouts.map((r) => [r.config, r]));
    fill('config-list', configs.length ? h('table', {},
      h('tr', {}, ['Name', 'Selector', 'Priority', 'Version', 'Hash', 'Rollout', 'Applied / targeted', 'Updated'].map((t) => h('th', {}, t))),
      configs.map((c) => {
        const r = byName[c.name];
        const n = r ? Object.values(r.agents) : [];
        return h('tr', { 'data-config': c.name },
          h('td', {}, h('a', { href: '#/config/' + encodeURIComponent(c.name) }, c.name)),
          h('td', { class: 'mono' }, c.selector || '(every agent)'), h('td', {}, c.priority), h('td', {}, c.version),
          h('td', { class: 'mono' }, short(c.hash)), h('td', {}, r ? badge(r.state) : '—'),
          h('td', {}, n.filter((p) => p.phase === 'applied').length + ' / ' + n.length),
          h('td', {}, ago(c.updated_at) + ' by ' + c.updated_by));
      })) : h('p', { class: 'muted' }, 'No configuration yet. Create one below; every agent its selector matches is offered it.'));
  }
  return { refresh };
}

function configPage(name) {
  const enc = encodeURIComponent(name);
  main.replaceChildren(h('p', {}, h('a', { href: '#/configs' }, '← all configurations')), h('h2', {}, name),
    h('div', { class: 'panel' }, h('h3', {}, 'Rollout'), h('div', { id: 'rollout' })), h('div', { id: 'form-slot' }));
  let formFor = null;
  async function refresh() {
    let cfg, r;
    try { [cfg, r] = await Promise.all([api('GET', '/configs/' + enc), api('GET', '/configs/' + enc + '/rollout')]); } catch (e) {
      fill('rollout', h('p', { class: 'error' }, e.message));
      return;
    }
    if (formFor !== cfg.hash + cfg.selector + cfg.priority) {
      formFor = cfg.hash + cfg.selector + cfg.priority;
      fill('form-slot', configForm(cfg, async (input) => {
        await api('PUT', '/configs/' + enc, input);
        toast('Configuration saved');
        await refresh();
      }), h('div', { class: 'panel' }, h('button', { class: 'danger', id: 'cf-delete', onclick: async () => {
        if (!confirm('Delete ' + name + '? Agents keep what they run.')) return;
        await api('DELETE', '/configs/' + enc); location.hash = '#/configs';
      } }, 'Delete configuration')));
    }
    const agents = Object.entries(r.agents);
    fill('rollout',
      h('div', { class: 'row' }, 'Version ', h('strong', {}, r.version), ' · hash ', h('code', {}, short(r.hash)), ' · ', badge(r.state),
        ' · batch ', r.current_batch,
        r.state === 'in_progress' ? h('button', { class: 'secondary', id: 'rollout-pause', onclick: async () => { await api('POST', '/configs/' + enc + '/rollout/pause'); await refresh(); } }, 'Pause') : null,
        (r.state === 'paused' || r.state === 'halted') ? h('button', { id: 'rollout-resume', onclick: async () => { await api('POST', '/configs/' + enc + '/rollout/resume'); await refresh(); } }, 'Resume') : null),
      r.halt_reason ? h('p', { class: 'error' }, 'Halted: ' + r.halt_reason) : null,
      agents.length ? h('table', { id: 'rollout-table' },
        h('tr', {}, ['Agent', 'Phase', 'Batch', 'Health', 'Online', 'Error', 'Updated'].map((t) => h('th', {}, t))),
        agents.map(([uid, p]) => h('tr', { 'data-uid': uid },
          h('td', { class: 'mono' }, h('a', { href: '#/agent/' + encodeURIComponent(uid) }, uid)),
          h('td', {}, badge(p.phase)), h('td', {}, p.batch || '—'),
          h('td', {}, p.healthy == null ? '—' : p.healthy ? 'healthy' : 'unhealthy'), h('td', {}, p.online ? 'yes' : 'no'),
          h('td', { class: 'error' }, p.error || ''), h('td', {}, ago(p.updated_at)))))
        : h('p', { class: 'muted' }, 'No agent matches the selector.'));
  }
  return { refresh };
}

// ---------- audit ----------
function auditPage() {
  main.replaceChildren(h('h2', {}, 'Audit log'), h('div', { class: 'panel', id: 'audit' }));
  async function refresh() {
    const { entries } = await api('GET', '/audit?limit=200');
    fill('audit', entries.length ? h('table', {},
      h('tr', {}, ['When', 'Who', 'What', 'Target', 'Old hash', 'New hash', 'Details'].map((t) => h('th', {}, t))),
      entries.map((e) => h('tr', {}, h('td', {}, when(e.at)), h('td', {}, e.actor), h('td', {}, e.action), h('td', { class: 'mono' }, e.target),
        h('td', { class: 'mono' }, short(e.old_hash)), h('td', { class: 'mono' }, short(e.new_hash)), h('td', {}, e.details))))
      : h('p', { class: 'muted' }, 'No change yet.'));
  }
  return { refresh };
}

window.addEventListener('hashchange', route);
connectEvents();
route();
// Relative times ("12 s ago") and anything missed stay fresh.
setInterval(scheduleRefresh, 10000);
