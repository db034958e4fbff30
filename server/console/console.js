// Tandem's admin console: plain JavaScript, no framework, no build step, nothing from another
// origin. Pages are hash routes (#/, #/users, #/users/<id>, #/rejections) over the admin API
// (/admin/v1, docs/protocol.md "Admin API"). The admin token is typed once, kept in this tab's
// sessionStorage and sent as `Authorization: Bearer`; a 401 forgets it and shows the sign-in form.
// Every piece of data reaches the page through text nodes (no HTML is ever parsed from a string),
// so a user's email cannot inject markup; the server's Content-Security-Policy forbids inline
// script and style.
'use strict';

(function () {
  const TOKEN_KEY = 'tandem-admin-token';
  const REFRESH_MS = 5000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  // The console is served at <base>/admin: the API is <base>/admin/v1 (a reverse proxy may mount
  // the server under a prefix).
  const BASE = location.pathname.replace(/\/admin\/?$/, '');

  let timer = null; // the overview's refresh
  let generation = 0; // bumped on each navigation, so a late answer never paints another page
  let closeDialog = null; // cancels the open confirmation, if any (navigation does)
  let flash = null; // what the next page says first (the outcome of an action that redrew it)

  // ---- DOM helpers: elements and text nodes only ----------------------------------------------

  function el(tag, attrs, ...children) {
    return build(document.createElement(tag), attrs, children);
  }

  function svg(tag, attrs, ...children) {
    return build(document.createElementNS(SVG_NS, tag), attrs, children);
  }

  function build(node, attrs, children) {
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
    }
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  const $ = (id) => document.getElementById(id);

  // ---- formatting -------------------------------------------------------------------------------

  function toDate(value) {
    if (value === undefined || value === null || value === '') return null;
    if (typeof value === 'number') return new Date(value > 1e12 ? value : value * 1000);
    const d = new Date(value);
    return Number.isNaN(d.getTime()) ? null : d;
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  function when(value) {
    const d = toDate(value);
    if (!d) return '—';
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function ago(value) {
    const d = toDate(value);
    if (!d) return 'never';
    const secs = Math.max(0, Math.round((Date.now() - d.getTime()) / 1000));
    if (secs < 60) return `${secs} s ago`;
    if (secs < 3600) return `${Math.floor(secs / 60)} min ago`;
    if (secs < 86400) return `${Math.floor(secs / 3600)} h ago`;
    return `${Math.floor(secs / 86400)} d ago`;
  }

  // A time cell: relative, with the exact local time as its tooltip.
  function timeCell(value) {
    return el('td', { title: toDate(value) ? when(value) : undefined }, ago(value));
  }

  function count(n) {
    return typeof n === 'number' ? n.toLocaleString('en') : '—';
  }

  // ---- the admin API --------------------------------------------------------------------------

  class SignedOut extends Error {}

  class ApiFailure extends Error {
    constructor(status, code, message) {
      super(message || code || `HTTP ${status}`);
      this.status = status;
      this.code = code;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  async function api(method, path, body) {
    const secret = token();
    if (!secret) throw new SignedOut();
    const headers = { Authorization: `Bearer ${secret}`, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(`${BASE}/admin/v1${path}`, init);
    } catch (e) {
      throw new ApiFailure(0, 'offline', 'The server cannot be reached.');
    }
    if (response.status === 401) {
      showSignIn('The server refused the admin token.');
      throw new SignedOut();
    }
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) {
      const code = data && typeof data.error === 'string' ? data.error : undefined;
      const message = data && data.error_description;
      throw new ApiFailure(response.status, code, message);
    }
    return data;
  }

  function query(params) {
    const parts = Object.entries(params)
      .filter(([, v]) => v !== undefined && v !== null && v !== '')
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
    return parts.length ? `?${parts.join('&')}` : '';
  }

  // ---- shell: sign-in, navigation, errors -------------------------------------------------------

  function showSignIn(message) {
    stopRefresh();
    sessionStorage.removeItem(TOKEN_KEY);
    $('page').hidden = true;
    clear($('page'));
    $('nav').hidden = true;
    $('sign-out').hidden = true;
    $('sign-in').hidden = false;
    const error = $('sign-in-error');
    error.textContent = message || '';
    error.hidden = !message;
    $('token').value = '';
    $('token').focus();
  }

  function showPage() {
    $('sign-in').hidden = true;
    $('nav').hidden = false;
    $('sign-out').hidden = false;
    const page = $('page');
    clear(page);
    page.hidden = false;
    return page;
  }

  function markNav(name) {
    for (const link of $('nav').querySelectorAll('a')) {
      if (link.dataset.page === name) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
  }

  function stopRefresh() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  function describe(error) {
    if (error instanceof ApiFailure) {
      return error.code ? `${error.message} (${error.code})` : error.message;
    }
    return String(error && error.message ? error.message : error);
  }

  // A line under a heading that says what went wrong (or is empty).
  function notice() {
    const node = el('p', { class: 'notice', role: 'status', hidden: true });
    if (flash) {
      node.className = 'notice ok';
      node.textContent = flash;
      node.hidden = false;
      flash = null;
    }
    return {
      node,
      error(e) {
        if (e instanceof SignedOut) return;
        node.className = 'notice error';
        node.textContent = describe(e);
        node.hidden = false;
      },
      ok(text) {
        node.className = 'notice ok';
        node.textContent = text;
        node.hidden = false;
      },
      clear() {
        node.hidden = true;
        node.textContent = '';
      },
    };
  }

  // A confirmation panel (a modal <dialog>): resolves to the fields' values, or null when
  // cancelled. `confirmText` names the button; `fields` are extra inputs (e.g. a reason).
  // `mustType`, when given, must be typed exactly before the button is enabled.
  function confirmDialog({ title, body, confirmText, danger, fields = [], mustType }) {
    return new Promise((resolve) => {
      const inputs = {};
      const confirmButton = el('button', {
        type: 'submit',
        class: danger ? 'danger' : 'primary',
        id: 'confirm-ok',
        disabled: mustType !== undefined,
      }, confirmText);
      const typed = mustType === undefined ? null : el('input', {
        id: 'confirm-typed',
        type: 'text',
        autocomplete: 'off',
        spellcheck: 'false',
        oninput: () => { confirmButton.disabled = typed.value !== mustType; },
      });
      const form = el('form', {},
        el('h2', {}, title),
        el('p', {}, body),
        fields.map((f) => {
          inputs[f.name] = el('input', {
            id: `confirm-${f.name}`,
            type: 'text',
            maxlength: f.maxlength,
            placeholder: f.placeholder,
            autocomplete: 'off',
          });
          return el('label', { for: `confirm-${f.name}` }, f.label, inputs[f.name]);
        }),
        typed && el('label', { for: 'confirm-typed' },
          'Type ', el('code', {}, mustType), ' to confirm', typed),
        el('div', { class: 'actions' },
          el('button', { type: 'button', id: 'confirm-cancel', onclick: () => finish(null) }, 'Cancel'),
          confirmButton));
      const dialog = el('dialog', { class: 'confirm', id: 'confirm' }, form);
      let done = false;
      function finish(value) {
        if (done) return;
        done = true;
        closeDialog = null;
        dialog.close();
        dialog.remove();
        resolve(value);
      }
      if (closeDialog) closeDialog();
      closeDialog = () => finish(null);
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        if (typed && typed.value !== mustType) return;
        const values = {};
        for (const [name, input] of Object.entries(inputs)) values[name] = input.value.trim();
        finish(values);
      });
      dialog.addEventListener('cancel', () => finish(null));
      document.body.appendChild(dialog);
      dialog.showModal();
      (typed || Object.values(inputs)[0] || confirmButton).focus();
    });
  }

  // ---- #/ overview ----------------------------------------------------------------------------

  function stat(id, label) {
    return el('div', { class: 'stat' },
      el('div', { class: 'stat-value', id }, '…'),
      el('div', { class: 'stat-label' }, label));
  }

  function renderOverview(page, gen) {
    markNav('overview');
    const status = notice();
    const switchState = el('span', { id: 'sync-state', class: 'pill' }, '…');
    const switchButton = el('button', { type: 'button', id: 'kill-switch', disabled: true }, '…');
    const pausesBody = el('tbody', { id: 'pauses' });
    const chart = el('div', { id: 'chart', class: 'chart' });
    const meta = el('p', { class: 'muted', id: 'instance' });
    let paused = null;

    page.append(
      el('h1', {}, 'Overview'),
      status.node,
      el('section', { class: 'card switch' },
        el('div', {},
          el('h2', {}, 'Sync for everyone'),
          el('p', { class: 'muted' },
            'Pausing answers every sync request 503 sync_paused with Retry-After; sign-in keeps ' +
            'working and devices keep their changes until sync resumes.')),
        el('div', { class: 'switch-control' }, switchState, switchButton)),
      el('section', { class: 'stats' },
        stat('stat-users', 'users'),
        stat('stat-streams', 'live event streams (this instance)'),
        stat('stat-pushes', 'pushes, last hour (this instance)'),
        stat('stat-pauses', 'pauses in force')),
      el('section', { class: 'card' },
        el('h2', {}, 'Pushes and pulls per minute ', el('span', { class: 'muted' }, '(this instance, last 60 minutes)')),
        chart),
      el('section', { class: 'card' },
        el('h2', {}, 'Pauses'),
        el('table', {},
          el('thead', {}, el('tr', {},
            el('th', {}, 'Scope'), el('th', {}, 'Since'), el('th', {}, 'Retry after'),
            el('th', {}, 'Reason'))),
          pausesBody)),
      meta);

    switchButton.addEventListener('click', async () => {
      status.clear();
      if (paused === false) {
        const answer = await confirmDialog({
          title: 'Pause sync for everyone?',
          body: 'Every device gets 503 sync_paused until you resume. Nothing is lost: devices keep ' +
            'their changes and send them after the pause.',
          confirmText: 'Pause sync',
          danger: true,
          fields: [{ name: 'reason', label: 'Reason (optional)', maxlength: 200,
            placeholder: 'e.g. bad release writing garbage' }],
        });
        if (!answer) return;
        switchButton.disabled = true;
        try {
          await api('POST', '/pause', answer.reason ? { reason: answer.reason } : {});
          status.ok('Sync is paused for everyone.');
        } catch (e) {
          status.error(e);
        }
      } else if (paused === true) {
        switchButton.disabled = true;
        try {
          await api('POST', '/resume', {});
          status.ok('Sync resumed.');
        } catch (e) {
          status.error(e);
        }
      }
      await refresh();
    });

    async function refresh() {
      let overview;
      let pauses;
      try {
        [overview, pauses] = await Promise.all([api('GET', '/overview'), api('GET', '/pauses')]);
      } catch (e) {
        if (gen === generation) status.error(e);
        return;
      }
      if (gen !== generation) return;
      paused = overview.paused === true;
      switchState.textContent = paused ? 'Paused' : 'Running';
      switchState.className = paused ? 'pill paused' : 'pill running';
      switchButton.textContent = paused ? 'Resume sync' : 'Pause sync';
      switchButton.className = paused ? 'primary' : 'danger';
      switchButton.disabled = false;
      const pushes = overview.pushesPerMinute || [];
      const pulls = overview.pullsPerMinute || [];
      $('stat-users').textContent = count(overview.users);
      $('stat-streams').textContent = count(overview.liveStreams);
      $('stat-pushes').textContent = count(pushes.reduce((a, b) => a + b, 0));
      $('stat-pauses').textContent = count(overview.pauses);
      clear(chart);
      chart.appendChild(drawChart(pushes, pulls));
      clear(pausesBody);
      const list = (pauses && pauses.pauses) || [];
      if (!list.length) {
        pausesBody.appendChild(el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'No pause: sync runs for everyone.')));
      }
      for (const p of list) {
        const scope = p.scope === '*'
          ? el('strong', {}, 'everyone')
          : el('a', { href: `#/users/${encodeURIComponent(p.scope)}` }, p.email || p.scope);
        pausesBody.appendChild(el('tr', {},
          el('td', {}, scope),
          timeCell(p.pausedAt),
          el('td', {}, p.retryAfterSecs === undefined ? '—' : `${p.retryAfterSecs} s`),
          el('td', {}, p.reason || '—')));
      }
      meta.textContent = `Instance ${overview.instance || '?'} · server ${overview.version || '?'} · ` +
        `refreshed ${when(new Date())}`;
    }

    refresh();
    timer = setInterval(refresh, REFRESH_MS);
  }

  // The 60-minute chart: pushes as bars, pulls as a line, oldest on the left; an SVG built node by
  // node.
  function drawChart(pushes, pulls) {
    const W = 720;
    const H = 160;
    const left = 36;
    const bottom = 22;
    const top = 8;
    const n = Math.max(pushes.length, pulls.length, 60);
    const max = Math.max(1, ...pushes, ...pulls);
    const plotW = W - left - 8;
    const plotH = H - top - bottom;
    const step = plotW / n;
    const y = (v) => top + plotH - (v / max) * plotH;
    const root = svg('svg', {
      viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart-svg',
      'aria-label': `Pushes and pulls per minute over the last ${n} minutes`,
    });
    root.appendChild(svg('line', { x1: left, x2: W - 8, y1: top + plotH, y2: top + plotH, class: 'axis' }));
    root.appendChild(svg('line', { x1: left, x2: W - 8, y1: top, y2: top, class: 'grid' }));
    root.appendChild(svg('text', { x: left - 6, y: top + 4, 'text-anchor': 'end', class: 'tick' }, String(max)));
    root.appendChild(svg('text', { x: left - 6, y: top + plotH + 4, 'text-anchor': 'end', class: 'tick' }, '0'));
    root.appendChild(svg('text', { x: left, y: H - 4, class: 'tick' }, `${n} min ago`));
    root.appendChild(svg('text', { x: W - 8, y: H - 4, 'text-anchor': 'end', class: 'tick' }, 'now'));
    for (let i = 0; i < n; i++) {
      const v = pushes[i] || 0;
      const minutesAgo = n - 1 - i;
      const bar = svg('rect', {
        x: (left + i * step + 1).toFixed(1), y: y(v).toFixed(1),
        width: Math.max(1, step - 2).toFixed(1), height: (top + plotH - y(v)).toFixed(1),
        class: 'push-bar',
      }, svg('title', {}, `${minutesAgo ? `${minutesAgo} min ago` : 'this minute'}: ${v} pushes, ${pulls[i] || 0} pulls`));
      root.appendChild(bar);
    }
    const points = [];
    for (let i = 0; i < n; i++) {
      points.push(`${(left + i * step + step / 2).toFixed(1)},${y(pulls[i] || 0).toFixed(1)}`);
    }
    root.appendChild(svg('polyline', { points: points.join(' '), class: 'pull-line' }));
    const legend = el('div', { class: 'legend' },
      el('span', { class: 'key bar-key' }), 'pushes ',
      el('span', { class: 'key line-key' }), 'pulls');
    return el('div', {}, root, legend);
  }

  // ---- #/users --------------------------------------------------------------------------------

  async function renderUsers(page, gen, params) {
    markNav('users');
    const status = notice();
    const search = el('input', {
      id: 'user-search', type: 'search', value: params.get('query') || '',
      placeholder: 'email (part of it) or user id', 'aria-label': 'Search users',
    });
    const form = el('form', { class: 'search' }, search, el('button', { type: 'submit' }, 'Search'));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      location.hash = `#/users${query({ query: search.value.trim() })}`;
    });
    const body = el('tbody', { id: 'users' });
    const paging = el('div', { class: 'paging' });
    page.append(
      el('h1', {}, 'Users'),
      form,
      status.node,
      el('table', {},
        el('thead', {}, el('tr', {},
          el('th', {}, 'Email'), el('th', {}, 'Signed up'), el('th', {}, 'Last push'),
          el('th', {}, 'Last pull'), el('th', { class: 'num' }, 'Records'),
          el('th', { class: 'num' }, 'Live streams'), el('th', {}, 'Sync'))),
        body),
      paging);
    let answer;
    let pauses;
    try {
      [answer, pauses] = await Promise.all([
        api('GET', `/users${query({
          query: params.get('query'), after: params.get('after'), limit: 50,
        })}`),
        api('GET', '/pauses'),
      ]);
    } catch (e) {
      if (gen === generation) status.error(e);
      return;
    }
    if (gen !== generation) return;
    const users = answer.users || [];
    const pausedIds = new Set(((pauses && pauses.pauses) || []).map((p) => p.scope));
    if (!users.length) {
      body.appendChild(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No user matches.')));
    }
    for (const u of users) {
      body.appendChild(el('tr', { 'data-user-id': u.id },
        el('td', {}, el('a', { href: `#/users/${encodeURIComponent(u.id)}`, class: 'user-link' }, u.email)),
        timeCell(u.createdAt),
        timeCell(u.lastPushAt),
        timeCell(u.lastPullAt),
        el('td', { class: 'num' }, count(u.records)),
        el('td', { class: 'num' }, count(u.liveStreams)),
        el('td', {}, u.paused || pausedIds.has(u.id)
          ? el('span', { class: 'pill paused' }, 'paused') : 'running')));
    }
    if (params.get('after')) {
      paging.appendChild(el('a', { href: `#/users${query({ query: params.get('query') })}` }, '« First page'));
    }
    if (answer.next) {
      paging.appendChild(el('a', {
        href: `#/users${query({ query: params.get('query'), after: answer.next })}`, id: 'next-page',
      }, 'Next page »'));
    }
    search.focus();
  }

  // ---- #/users/<id> ---------------------------------------------------------------------------

  async function renderUser(page, gen, id) {
    markNav('users');
    const status = notice();
    page.append(el('p', {}, el('a', { href: '#/users' }, '« Users')), status.node);
    let detail;
    let pauses;
    try {
      [detail, pauses] = await Promise.all([
        api('GET', `/users/${encodeURIComponent(id)}`),
        api('GET', '/pauses'),
      ]);
    } catch (e) {
      if (gen === generation) status.error(e);
      return;
    }
    if (gen !== generation) return;
    const u = detail.user || {};
    // The user's own pause (the global one aside), with its time and reason.
    const pause = ((pauses && pauses.pauses) || []).find((p) => p.scope === u.id);
    const paused = Boolean(pause) || u.paused === true;
    const row = (label, value) => [el('dt', {}, label), el('dd', {}, value)];
    const collections = Object.entries(detail.collections || {}).sort(([a], [b]) => a.localeCompare(b));
    const spaces = detail.spaces || [];
    const sessions = detail.sessions || [];

    const pauseButton = el('button', { type: 'button', id: 'user-pause', class: paused ? 'primary' : 'danger' },
      paused ? 'Resume sync for this user' : 'Pause sync for this user');
    const revokeButton = el('button', { type: 'button', id: 'user-revoke' }, 'Revoke sessions');
    const deleteButton = el('button', { type: 'button', id: 'user-delete', class: 'danger' }, 'Delete user…');

    pauseButton.addEventListener('click', async () => {
      status.clear();
      try {
        if (paused) {
          await api('POST', '/resume', { user: u.id });
          flash = 'Sync resumed for this user.';
        } else {
          const answer = await confirmDialog({
            title: `Pause sync for ${u.email}?`,
            body: 'Their devices get 503 sync_paused until you resume; they keep their changes.',
            confirmText: 'Pause',
            danger: true,
            fields: [{ name: 'reason', label: 'Reason (optional)', maxlength: 200 }],
          });
          if (!answer) return;
          const body = { user: u.id };
          if (answer.reason) body.reason = answer.reason;
          await api('POST', '/pause', body);
          flash = 'Sync is paused for this user.';
        }
        route();
      } catch (e) {
        status.error(e);
      }
    });

    revokeButton.addEventListener('click', async () => {
      status.clear();
      const answer = await confirmDialog({
        title: `Revoke every session of ${u.email}?`,
        body: 'Their devices are signed out at their next request and must sign in again.',
        confirmText: 'Revoke sessions',
        danger: true,
      });
      if (!answer) return;
      try {
        const result = await api('POST', `/users/${encodeURIComponent(u.id)}/revoke`);
        flash = `${count(result.sessionsRevoked)} session(s) revoked.`;
        if (gen === generation) route();
      } catch (e) {
        status.error(e);
      }
    });

    deleteButton.addEventListener('click', async () => {
      status.clear();
      const answer = await confirmDialog({
        title: `Delete ${u.email} and all their data?`,
        body: 'Their records, sessions and memberships go for good. A space they alone owned passes ' +
          'to its longest-standing member; a space with no other member is deleted.',
        confirmText: 'Delete user',
        danger: true,
        mustType: u.email,
      });
      if (!answer) return;
      try {
        const result = await api('DELETE', `/users/${encodeURIComponent(u.id)}`);
        const moved = (result.spacesTransferred || []).length;
        const gone = (result.spacesDeleted || []).length;
        clear(page);
        const done = notice();
        page.append(el('p', {}, el('a', { href: '#/users' }, '« Users')), done.node);
        done.ok(`Deleted ${u.email}: ${count(result.records)} record(s), ${moved} space(s) passed on, ` +
          `${gone} space(s) deleted.`);
      } catch (e) {
        status.error(e);
      }
    });

    page.append(
      el('h1', {}, u.email || id, ' ', paused ? el('span', { class: 'pill paused' }, 'paused') : null),
      el('section', { class: 'card' },
        el('dl', { class: 'summary' },
          row('User id', el('code', {}, u.id || id)),
          row('Signed up', when(u.createdAt)),
          row('Last push', `${ago(u.lastPushAt)}${toDate(u.lastPushAt) ? ` (${when(u.lastPushAt)})` : ''}`),
          row('Last pull', `${ago(u.lastPullAt)}${toDate(u.lastPullAt) ? ` (${when(u.lastPullAt)})` : ''}`),
          paused && row('Sync', pause
            ? `paused since ${when(pause.pausedAt)}${pause.reason ? `: ${pause.reason}` : ''}`
            : 'paused'),
          row('Records', count(u.records)),
          row('Live event streams', count(detail.liveStreams !== undefined ? detail.liveStreams : u.liveStreams))),
        el('div', { class: 'actions' }, pauseButton, revokeButton, deleteButton)),
      el('div', { class: 'columns' },
        el('section', { class: 'card' },
          el('h2', {}, 'Records per collection'),
          el('table', {},
            el('thead', {}, el('tr', {}, el('th', {}, 'Collection'), el('th', { class: 'num' }, 'Records'))),
            el('tbody', { id: 'collections' },
              collections.length ? collections.map(([name, n]) => el('tr', {},
                el('td', {}, name), el('td', { class: 'num' }, count(n))))
                : el('tr', {}, el('td', { colspan: 2, class: 'muted' }, 'No record.'))))),
        el('section', { class: 'card' },
          el('h2', {}, 'Spaces'),
          el('table', {},
            el('thead', {}, el('tr', {}, el('th', {}, 'Name'), el('th', {}, 'Role'), el('th', {}, 'Id'))),
            el('tbody', {},
              spaces.length ? spaces.map((s) => el('tr', {},
                el('td', {}, s.name), el('td', {}, s.role), el('td', {}, el('code', {}, s.id))))
                : el('tr', {}, el('td', { colspan: 3, class: 'muted' }, 'No space.')))))),
      el('section', { class: 'card' },
        el('h2', {}, 'Sessions'),
        el('table', {},
          el('thead', {}, el('tr', {}, el('th', {}, 'Session'), el('th', {}, 'Signed in'), el('th', {}, 'Last used'))),
          el('tbody', { id: 'sessions' },
            sessions.length ? sessions.map((s) => el('tr', {},
              el('td', {}, el('code', {}, s.id)), timeCell(s.createdAt), timeCell(s.lastUsedAt)))
              : el('tr', {}, el('td', { colspan: 3, class: 'muted' }, 'No session.'))))),
      el('p', {}, el('a', { href: `#/rejections${query({ user: u.id })}` }, 'Rejected changes of this user »')));
  }

  // ---- #/rejections ---------------------------------------------------------------------------

  async function renderRejections(page, gen, params) {
    markNav('rejections');
    const status = notice();
    const user = params.get('user');
    const body = el('tbody', { id: 'rejections' });
    page.append(
      el('h1', {}, 'Rejected changes'),
      el('p', { class: 'muted' }, user
        ? ['Of one user. ', el('a', { href: '#/rejections' }, 'Show everyone’s.')]
        : 'The newest changes the server refused, with the reason it gave the device.'),
      status.node,
      el('table', {},
        el('thead', {}, el('tr', {},
          el('th', {}, 'When'), el('th', {}, 'User'), el('th', {}, 'Stream'), el('th', {}, 'Collection'),
          el('th', {}, 'Record'), el('th', {}, 'Op'), el('th', {}, 'Reason'))),
        body));
    let answer;
    try {
      answer = await api('GET', `/rejections${query({ user, limit: 100 })}`);
    } catch (e) {
      if (gen === generation) status.error(e);
      return;
    }
    if (gen !== generation) return;
    const list = answer.rejections || [];
    if (!list.length) {
      body.appendChild(el('tr', {}, el('td', { colspan: 7, class: 'muted' }, 'No rejected change.')));
    }
    for (const r of list) {
      body.appendChild(el('tr', {},
        timeCell(r.at),
        el('td', {}, el('a', { href: `#/users/${encodeURIComponent(r.userId)}` }, r.email || r.userId)),
        el('td', {}, r.stream),
        el('td', {}, r.collection),
        el('td', {}, el('code', {}, r.id)),
        el('td', {}, el('code', {}, r.opId)),
        el('td', {}, el('span', { class: 'reason' }, r.reason))));
    }
  }

  // ---- router ---------------------------------------------------------------------------------

  function route() {
    stopRefresh();
    if (closeDialog) closeDialog();
    generation += 1;
    const gen = generation;
    if (!token()) {
      showSignIn();
      return;
    }
    const hash = location.hash.replace(/^#/, '') || '/';
    const [path, search] = hash.split('?', 2);
    const params = new URLSearchParams(search || '');
    const page = showPage();
    const userMatch = path.match(/^\/users\/([^/]+)$/);
    if (path === '/' || path === '') renderOverview(page, gen);
    else if (path === '/users') renderUsers(page, gen, params);
    else if (userMatch) renderUser(page, gen, decodeURIComponent(userMatch[1]));
    else if (path === '/rejections') renderRejections(page, gen, params);
    else {
      markNav('');
      page.append(el('h1', {}, 'Not found'), el('p', {}, el('a', { href: '#/' }, 'Overview')));
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('sign-in-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const value = $('token').value.trim();
      if (!value) return;
      sessionStorage.setItem(TOKEN_KEY, value);
      $('token').value = '';
      // Checked with the smallest call there is, so a wrong token never shows a page.
      try {
        await api('GET', '/users?limit=1');
      } catch (e) {
        if (e instanceof SignedOut) return; // refused: the form says so
        showSignIn(`The server cannot be asked: ${describe(e)}`);
        return;
      }
      route();
    });
    $('sign-out').addEventListener('click', () => {
      showSignIn();
    });
    window.addEventListener('hashchange', route);
    route();
  });
})();
