// latchkey console: progressive enhancement only. Every page works without it.
'use strict';

document.addEventListener('DOMContentLoaded', () => {
  // Copy buttons: <button data-copy="element-id">.
  for (const button of document.querySelectorAll('button[data-copy]')) {
    button.addEventListener('click', async () => {
      const target = document.getElementById(button.dataset.copy);
      if (!target) return;
      try {
        await navigator.clipboard.writeText(target.textContent.trim());
        button.textContent = 'Copied';
      } catch {
        const range = document.createRange();
        range.selectNodeContents(target);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        button.textContent = 'Selected: press Ctrl+C';
      }
    });
  }

  // Destructive buttons ask first.
  for (const form of document.querySelectorAll('form[data-confirm]')) {
    form.addEventListener('submit', (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // The auth-type select shows only its own fieldset (and disables the others, so they are not sent).
  for (const select of document.querySelectorAll('select[data-switch="authtype"]')) {
    const form = select.closest('form');
    const apply = () => {
      for (const fs of form.querySelectorAll('fieldset[data-authtype]')) {
        const on = fs.dataset.authtype === select.value;
        fs.hidden = !on;
        fs.disabled = !on;
      }
    };
    select.addEventListener('change', apply);
    apply();
  }

  // Live audit tail: polls the console's audit.json and puts new rows on top.
  const live = document.getElementById('live');
  const tbody = document.querySelector('#audit tbody');
  if (live && tbody) {
    const status = document.getElementById('tail-status');
    const seen = new Set();
    let newest = null;
    for (const row of tbody.querySelectorAll('tr')) {
      if (row.dataset.row) seen.add(row.dataset.row);
      const t = row.querySelector('time');
      if (t && (!newest || t.dateTime > newest)) newest = t.dateTime;
    }
    let timer = null;
    const cell = (tr, text, cls) => {
      const td = document.createElement('td');
      td.textContent = text === null || text === undefined ? '' : String(text);
      if (cls) td.className = cls;
      tr.appendChild(td);
      return td;
    };
    const statusClass = (s) => (typeof s !== 'number' ? '' : s >= 500 ? 's5' : s >= 400 ? 's4' : s >= 300 ? 's3' : 's2');
    const poll = async () => {
      const url = new URL(live.dataset.tail, window.location.href);
      if (newest) url.searchParams.set('since', newest);
      try {
        const res = await fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } });
        if (res.status === 401) {
          status.textContent = 'Session ended: sign in again.';
          live.checked = false;
          return;
        }
        const page = await res.json();
        const rows = (page.data || []).filter((r) => !seen.has(`${r.time}|${r.requestId}|${r.action}`) && (!newest || r.time > newest || r.time === newest));
        for (const r of rows.reverse()) {
          const id = `${r.time}|${r.requestId}|${r.action}`;
          if (seen.has(id)) continue;
          seen.add(id);
          const tr = document.createElement('tr');
          tr.className = 'fresh';
          const td = document.createElement('td');
          const time = document.createElement('time');
          time.dateTime = r.time;
          time.textContent = r.time.replace('T', ' ').slice(0, 19);
          td.appendChild(time);
          tr.appendChild(td);
          cell(tr, r.action);
          cell(tr, r.integrationId);
          cell(tr, r.keyId);
          cell(tr, r.method);
          cell(tr, r.host);
          const code = document.createElement('code');
          code.textContent = r.path || '';
          cell(tr, '').appendChild(code);
          cell(tr, r.status, statusClass(r.status));
          cell(tr, r.durationMs, 'num');
          tbody.insertBefore(tr, tbody.firstChild);
          if (!newest || r.time > newest) newest = r.time;
        }
        status.textContent = `Live: updated ${new Date().toLocaleTimeString()}`;
      } catch {
        status.textContent = 'Live tail: cannot reach latchkey, retrying';
      }
      if (live.checked) timer = setTimeout(poll, 2000);
    };
    live.addEventListener('change', () => {
      clearTimeout(timer);
      if (live.checked) poll();
      else status.textContent = '';
    });
  }
});
