// The browser suite's fixtures: the real calltrail binary on a loopback port with demo data,
// Debian's Chromium driven by playwright-core, the API (with the demo owner's token) to
// compute what the page must show, and a fake QM system for the uploads.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, '..', '..');
export const artifacts = path.join(root, 'target', 'e2e-artifacts');

const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'];

/** Starts `calltrail demo` on a free port; resolves once it listens. `args` go to the server
 *  as they are (`demo` takes every flag of `serve`). */
export async function startServer({ calls = 6000, days = 30, args = [] } = {}) {
  const bin = process.env.CALLTRAIL_BIN || path.join(root, 'target', 'debug', 'calltrail');
  const data = mkdtempSync(path.join(tmpdir(), 'calltrail-e2e-'));
  const child = spawn(bin, ['demo', '--data', data, '--listen', '127.0.0.1:0', '--no-live', '--calls', String(calls), '--days', String(days), ...args],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'warn' } });
  let out = '';
  const base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 120_000);
    const seen = chunk => {
      out += chunk;
      const m = out.match(/listening on (http:\/\/[\d.:]+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    child.stdout.on('data', seen);
    child.stderr.on('data', seen);
    child.on('exit', code => { clearTimeout(timer); reject(new Error(`server exited with ${code}:\n${out}`)); });
  });
  const text = readFileSync(path.join(data, 'demo-logins.txt'), 'utf8');
  const logins = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^(owner|admin|manager|supervisor|operator)\s+(\S+)\s+(\S+)$/);
    if (m && !logins[m[1]]) logins[m[1]] = { login: m[2], password: m[3] };
  }
  const token = text.match(/API token of owner: (\S+)/)[1];
  return {
    base, logins, token, data,
    async stop() {
      child.kill('SIGTERM');
      await new Promise(r => child.once('exit', r));
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** A stand-in for the QM system's import API on a loopback port. It takes only `Authorization:
 *  Basic <key>` (else 401); a call without `id` or `fileLink` is 400, which is how calltrail checks
 *  a key. Like the real system it downloads each call's recording by its link, before it answers.
 *  The first `refuse` calls it sees are refused once (400 with an x-correlation-id), so that an
 *  upload has errors to send again. */
export async function startFakeQm(key, { refuse = 0 } = {}) {
  const seen = { calls: new Map(), users: [], downloads: [], refused: [] };
  const server = createServer(async (req, res) => {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const answer = (status, text = '', headers = {}) => { res.writeHead(status, headers); res.end(text); };
    if (req.headers.authorization !== `Basic ${key}`) return answer(401, 'unknown API key');
    let body;
    try { body = JSON.parse(raw); } catch { return answer(400, 'not JSON'); }
    if (req.method === 'POST' && req.url === '/integration/import/user') {
      seen.users.push(body);
      return answer(200);
    }
    if (req.method !== 'POST' || req.url !== '/v2/integration/import/call') return answer(404);
    if (!body.id || !body.fileLink) return answer(400, 'id and fileLink are required');
    if (seen.refused.length < refuse && !seen.refused.some(r => r.id === body.id)) {
      const correlationId = `fake-qm-${seen.refused.length + 1}`;
      seen.refused.push({ id: body.id, correlationId });
      return answer(400, 'refused by the fake QM system', { 'x-correlation-id': correlationId });
    }
    try {
      const file = await fetch(body.fileLink);
      seen.downloads.push({ id: body.id, status: file.status, bytes: (await file.arrayBuffer()).byteLength });
    } catch (e) {
      seen.downloads.push({ id: body.id, status: 0, bytes: 0, error: String(e) });
    }
    seen.calls.set(body.id, body);
    return answer(200);
  });
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`, seen,
    stop: () => new Promise(resolve => { server.closeAllConnections(); server.close(resolve); }),
  };
}

export async function launch() {
  return chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_FLAGS, headless: true });
}

/** A fresh browser context (own cookies) in Russian, at a laptop's size. */
export async function newPage(browser, server, opts = {}) {
  const context = await browser.newContext({ baseURL: server.base, locale: opts.locale || 'ru-RU', viewport: { width: 1500, height: 900 }, acceptDownloads: true });
  const page = await context.newPage();
  page.on('pageerror', e => { page.errors = (page.errors || []).concat(String(e)); });
  return page;
}

/** Signs in through the form and waits for the first page of calls. */
export async function signIn(page, server, role) {
  const who = server.logins[role];
  await page.goto('/');
  await page.fill('#login', who.login);
  await page.fill('#password', who.password);
  await page.click('form.login button[type=submit]');
  await page.waitForSelector('header.top');
}

/** Waits until the table shows a settled first page (loading done). */
export async function settled(page) {
  await page.waitForFunction(() => {
    const rows = document.querySelectorAll('#calls tbody tr');
    const loading = document.querySelector('#calls tr.state-row.loading');
    const total = document.querySelector('#total');
    return rows.length > 0 && !loading && total && total.textContent !== '…';
  });
}

/** The API, as the demo owner or with a given token. */
export async function api(server, method, pathAndQuery, body, token = server.token) {
  const res = await fetch(server.base + pathAndQuery, {
    method, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${pathAndQuery}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

/** The page's own view of the list: shown row ids and the displayed total. */
export async function shown(page) {
  return page.evaluate(() => ({
    ids: [...document.querySelectorAll('#calls tbody tr.call')].map(r => r.dataset.id),
    total: Number(document.querySelector('#total').textContent.replace(/\D/g, '')),
    headers: [...document.querySelectorAll('#calls thead th')].map(th => th.dataset.col),
  }));
}

export async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: false });
}
