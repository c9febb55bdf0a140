// The botauth sandbox console. Standard DOM and EventSource only (current Chromium and
// Firefox), no framework, nothing loaded from elsewhere. Everything that comes from the feed
// (claims, activity text, card titles) is untrusted: it is inserted as text, never as HTML.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children; strings become text nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child !== undefined && child !== null && child !== false) node.append(child);
    }
    return node;
  }

  const turns = new Map();
  let faultsShown = false;

  function setStatus(text) {
    $('fault-status').textContent = text;
  }

  function act(body) {
    return fetch('/console/actions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    }).then((response) => {
      if (!response.ok) return response.text().then((text) => setStatus(text));
      return undefined;
    }).catch((error) => setStatus('The sandbox cannot be reached: ' + error));
  }

  // ---- chat ----

  function chatLine(kind, ...content) {
    const item = el('li', { class: kind }, el('div', { class: 'bubble' }, ...content));
    $('messages').append(item);
    item.scrollIntoView({ block: 'nearest' });
    return item;
  }

  function isWebUrl(url) {
    return typeof url === 'string' && /^https?:\/\//i.test(url);
  }

  /** A card action as a real button: a message back to the bot, or a link to open. */
  function actionButton(action) {
    const title = String(action.title || action.text || action.value || action.type || 'action');
    const button = el('button', { type: 'button', text: title });
    const url = action.url || action.value;
    if (/^(openUrl|signin|Action\.OpenUrl)$/.test(action.type || '')) {
      if (isWebUrl(url)) {
        button.addEventListener('click', () => window.open(url, '_blank', 'noopener,noreferrer'));
      } else {
        button.disabled = true;
      }
    } else {
      const value = typeof action.value === 'string' ? action.value
        : typeof action.text === 'string' ? action.text : title;
      button.addEventListener('click', () => act({ action: 'say', text: value }));
    }
    return button;
  }

  /** Hero, thumbnail, sign-in, OAuth and Adaptive Cards, at least as text and buttons. */
  function card(attachment) {
    const content = attachment.content || {};
    const box = el('div', { class: 'card' },
      el('div', { class: 'label', text: attachment.contentType || 'attachment' }));
    if (content.title) box.append(el('div', { class: 'title', text: String(content.title) }));
    if (content.subtitle) box.append(el('div', { text: String(content.subtitle) }));
    if (content.text) box.append(el('div', { text: String(content.text) }));
    for (const block of Array.isArray(content.body) ? content.body : []) {
      if (block && typeof block.text === 'string') box.append(el('div', { text: block.text }));
    }
    const actions = [].concat(
      Array.isArray(content.buttons) ? content.buttons : [],
      Array.isArray(content.actions) ? content.actions : []);
    for (const action of actions) if (action) box.append(actionButton(action));
    return box;
  }

  function botActivity(activity) {
    const type = activity.type || 'message';
    if (type === 'typing') {
      $('typing').hidden = false;
      return;
    }
    $('typing').hidden = true;
    if (type !== 'message') {
      chatLine('system', 'The bot sent a ' + type + ' activity');
      return;
    }
    const parts = [];
    if (typeof activity.text === 'string' && activity.text) parts.push(el('div', { text: activity.text }));
    for (const attachment of Array.isArray(activity.attachments) ? activity.attachments : []) {
      if (attachment) parts.push(card(attachment));
    }
    const suggested = activity.suggestedActions && activity.suggestedActions.actions;
    if (Array.isArray(suggested) && suggested.length) {
      parts.push(el('div', {}, ...suggested.filter(Boolean).map(actionButton)));
    }
    if (!parts.length) parts.push(el('div', { text: '(a message without text)' }));
    chatLine('bot', ...parts);
  }

  // ---- inspector ----

  function turn(number) {
    let entry = turns.get(number);
    if (!entry) {
      const title = el('h3', { text: number === 0 ? 'Before the first activity' : 'Turn ' + number });
      const list = el('ol');
      const section = el('section', { class: 'turn', id: 'turn-' + number }, title, list);
      $('turns').prepend(section);
      entry = { title, list, inbound: null };
      turns.set(number, entry);
    }
    return entry;
  }

  function badge(text, tone) {
    return el('span', { class: 'badge ' + tone, text });
  }

  function statusBadge(status, injected) {
    const tone = status >= 200 && status < 300 ? 'ok' : status === 429 || status >= 500 ? 'warn' : 'bad';
    return badge('HTTP ' + status + (injected ? ' (injected)' : ''), tone);
  }

  function pairs(list) {
    const dl = el('dl');
    for (const [name, value] of list) {
      if (value === undefined || value === null || value === '') continue;
      dl.append(el('dt', { text: name }), el('dd', { text: String(value) }));
    }
    return dl;
  }

  function json(label, value) {
    if (value === undefined || value === null) return null;
    return el('div', {}, el('div', { class: 'label', text: label }),
      el('pre', { text: JSON.stringify(value, null, 2) }));
  }

  /** A decoded JWT: header and claims; the signature is never sent to the page. */
  function decoded(label, token) {
    if (!token) return null;
    return el('div', {},
      json(label + ': header', token.header),
      json(label + ': claims', token.claims),
      el('div', { class: 'label', text: label + ': signature ' + token.signature }));
  }

  function entry(event, summary, ...body) {
    const details = el('details', {}, el('summary', {}, ...summary), ...body);
    const item = el('li', { 'data-kind': event.kind, 'data-id': event.id }, details);
    turn(event.turn).list.append(item);
    return item;
  }

  const render = {
    inbound(event) {
      const activity = event.activity || {};
      const text = activity.type === 'message' ? ' “' + (activity.text || '') + '”' : '';
      const t = turn(event.turn);
      t.title.textContent = 'Turn ' + event.turn + ': ' + (activity.type || 'activity') + text
        + (event.forged ? ' (forged)' : '');
      const pending = badge('sending…', 'info');
      const answer = el('div');
      const item = entry(event,
        [el('span', { class: 'dir', text: 'Bot Service → bot' }), ' ',
          (activity.type || 'activity') + text, pending],
        pairs([
          ['forged', event.forged],
          ['serviceUrl', activity.serviceUrl],
          ['channelId', activity.channelId],
          ['activity id', activity.id],
          ['key endorsements', event.endorsements ? event.endorsements.join(', ') : 'none published'],
        ]),
        event.token ? decoded('Channel token', event.token) : el('p', { text: 'No Authorization header.' }),
        answer);
      if (event.forged) item.setAttribute('data-forged', '');
      let line = null;
      if (event.forged) line = chatLine('system', 'Forged activity sent: ' + event.forged);
      else if (activity.type === 'message') line = chatLine('user', activity.text || '');
      else if (activity.type === 'conversationUpdate') line = chatLine('system', 'conversationUpdate: the user and the bot joined');
      t.inbound = { pending, answer, line, forged: event.forged };
    },

    delivery(event) {
      const t = turn(event.turn);
      if (!t.inbound) return;
      const result = event.status === null || event.status === undefined
        ? badge('unreachable', 'bad') : statusBadge(event.status, false);
      result.setAttribute('data-status', event.status === null ? '' : event.status);
      t.inbound.pending.replaceWith(result);
      t.inbound.answer.append(el('div', { class: 'label', text: 'The bot answered' }), pairs([
        ['status', event.status],
        ['WWW-Authenticate', event.www_authenticate],
        ['body', event.body],
        ['error', event.error],
        ['time', event.elapsed_ms + ' ms'],
      ]));
      if (event.error) {
        chatLine('system refused', 'The bot cannot be reached: ' + event.error);
      } else if (event.status >= 300) {
        chatLine('system refused', 'The bot refused the activity: HTTP ' + event.status
          + (event.www_authenticate ? ' (WWW-Authenticate: ' + event.www_authenticate + ')' : ''));
      }
    },

    token_request(event) {
      const c = event.credential || {};
      const kind = c.type === 'managed_identity' ? 'managed identity (' + c.source + ')' : (c.type || '').replace('_', ' ');
      const summary = [el('span', { class: 'dir', text: 'bot → ' + event.endpoint }), ' token request · ' + kind,
        statusBadge(event.status, event.injected)];
      if (event.retry_of) summary.push(badge('retry of #' + event.retry_of, 'info'));
      if (event.error && event.error.code) summary.push(' ' + event.error.code);
      entry(event, summary,
        pairs([
          ['event', '#' + event.id],
          ['endpoint', event.method + ' ' + event.path],
          ['client_id', event.client_id],
          ['scope / resource', event.resource],
          ['credential', kind],
          ['client_secret', c.type === 'secret' ? c.secret + ' (' + c.length + ' characters)' : null],
          ['x5t', c.x5t],
          ['x5t#S256', c['x5t#S256']],
          ['identity', c.identity],
          ['secret header', c.secret_header],
          ['note', c.note],
          ['Retry-After', event.retry_after],
          ['retry of', event.retry_of ? '#' + event.retry_of : null],
          ['error', event.error ? [event.error.code, event.error.error].filter(Boolean).join(' ') : null],
          ['description', event.error ? event.error.description : null],
        ]),
        decoded('Client assertion', c.assertion),
        decoded('Issued access token', event.issued));
    },

    connector_call(event) {
      const ok = event.status >= 200 && event.status < 300;
      entry(event,
        [el('span', { class: 'dir', text: 'bot → Bot Connector' }), ' ' + event.method + ' ' + event.path,
          statusBadge(event.status, event.injected), ok ? '' : ' ' + event.verdict],
        pairs([
          ['verdict', event.verdict],
          ['WWW-Authenticate', event.www_authenticate],
        ]),
        event.token ? decoded('Bearer token', event.token) : el('p', { text: 'No bearer token.' }),
        json('Activity', event.activity));
      if (ok && event.activity) botActivity(event.activity);
    },

    key_fetch(event) {
      entry(event,
        [el('span', { class: 'dir', text: 'bot → ' + event.what }), ' ' + event.path,
          statusBadge(event.status, event.injected)],
        pairs([['kids', (event.kids || []).join(', ')]]));
    },

    /** A Token Service request: operation and outcome; its bearer values are only named. */
    sign_in(event) {
      entry(event,
        [el('span', { class: 'dir', text: (event.from || 'bot') + ' → Token Service' }),
          ' ' + event.operation + (event.connection ? ' · ' + event.connection : ''),
          statusBadge(event.status, event.injected), ' ' + event.outcome],
        pairs([
          ['operation', event.operation],
          ['endpoint', event.method + ' ' + event.path],
          ['connection', event.connection],
          ['channel', event.channel],
          ['user', event.user],
          ['outcome', event.outcome],
          ['withheld', (event.withheld || []).join(', ')],
        ]));
    },

    /** A Key Vault request: operation and outcome; a secret's value is only named. */
    key_vault(event) {
      entry(event,
        [el('span', { class: 'dir', text: 'bot → Key Vault' }), ' ' + event.operation,
          statusBadge(event.status, event.injected), ' ' + event.outcome],
        pairs([
          ['endpoint', event.method + ' ' + event.path],
          ['api-version', event.api_version],
          ['outcome', event.outcome],
          ['WWW-Authenticate', event.www_authenticate],
          ['Retry-After', event.retry_after],
          ['withheld', (event.withheld || []).join(', ')],
        ]),
        event.token ? decoded('Bearer token', event.token) : el('p', { text: 'No bearer token.' }));
    },

    fault(event) {
      entry(event, [el('span', { class: 'dir', text: 'Fault' }), ' ' + event.label, badge('applied', 'info')],
        pairs([['what', event.detail]]));
      setStatus(event.label + ': ' + event.detail);
    },

    note(event) {
      entry(event, [el('span', { class: 'dir', text: 'Note' }), ' ' + event.text]);
      chatLine('system', event.text);
    },
  };

  function onEvent(event) {
    const show = render[event.kind];
    if (show) show(event);
    else entry(event, [event.kind || 'event'], json('Event', event));
  }

  function onHello(hello) {
    $('target').textContent = hello.bot
      ? 'Bot: ' + hello.bot + ' (app id ' + hello.app_id + ')'
      : 'No bot to chat with (start with --bot URL); inspecting only.';
    $('send').disabled = !hello.bot;
    $('join').disabled = !hello.bot;
    if (faultsShown) return;
    faultsShown = true;
    for (const fault of hello.faults || []) {
      const help = el('span', { id: 'fault-help-' + fault.id, class: 'hint', hidden: true, text: fault.help });
      const button = el('button', {
        type: 'button', id: 'fault-' + fault.id, title: fault.help,
        'aria-describedby': 'fault-help-' + fault.id, text: fault.label,
      });
      button.addEventListener('click', () => act({ action: 'fault', fault: fault.id }));
      $('fault-buttons').append(button, help);
    }
  }

  function connect() {
    const source = new EventSource('/console/events');
    source.addEventListener('hello', (e) => onHello(JSON.parse(e.data)));
    source.onmessage = (e) => onEvent(JSON.parse(e.data));
    source.onopen = () => {
      $('connection').textContent = 'live';
      $('connection').className = 'live';
    };
    source.onerror = () => {
      $('connection').textContent = 'reconnecting…';
      $('connection').className = '';
    };
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('say').addEventListener('submit', (e) => {
      e.preventDefault();
      const input = $('text');
      const text = input.value.trim();
      if (!text) return;
      input.value = '';
      act({ action: 'say', text });
    });
    $('join').addEventListener('click', () => act({ action: 'join' }));
    connect();
  });
}());
