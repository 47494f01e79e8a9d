// Page speed against a running calltrail (not a test: a measurement for BENCHMARKS.md).
// Compares how long the page takes to show a view with how long the API takes to answer the
// same search for the same viewer.
//
//   node tests/e2e/page-speed.mjs http://127.0.0.1:8080 LOGIN PASSWORD [runs]
import { chromium } from 'playwright-core';

const [base, login, password, runsArg] = process.argv.slice(2);
const runs = Number(runsArg || 15);
const views = [
  '/?preset=today',
  '/?preset=last_7_days',
  '/?preset=last_30_days&result=answered&result=busy',
  '/?preset=last_30_days&direction=incoming&talk_min=60&talk_max=600',
  '/?preset=last_30_days&number=4567',
];

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
const context = await browser.newContext({ baseURL: base, viewport: { width: 1500, height: 900 } });
const page = await context.newPage();
await page.goto('/');
await page.fill('#login', login);
await page.fill('#password', password);
await page.click('form.login button[type=submit]');
await page.waitForSelector('#total');

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
console.log('| view | API p50 / p95 ms | page, in-page change p50 / p95 ms | page, fresh load p50 / p95 ms | rows shown | total |');
console.log('|---|---|---|---|---|---|');
for (const view of views) {
  const api = [], shown = [], changed = [];
  let total = '', rows = 0;
  for (let i = 0; i < runs; i++) {
    // The API as the page calls it, from the page (same cookie, same browser).
    const q = new URLSearchParams(view.slice(2)); q.set('tz', 'Europe/Moscow'); q.set('limit', '50');
    api.push(await page.evaluate(async query => {
      const t0 = performance.now();
      const r = await fetch(`/api/v1/calls?${query}`);
      await r.json();
      return performance.now() - t0;
    }, q.toString()));
    // The page: from navigation to the first page of rows and the total on screen.
    const t0 = Date.now();
    await page.goto(view);
    await page.waitForFunction(() => {
      const t = document.querySelector('#total');
      return t && t.textContent !== '…' && !document.querySelector('#calls tr.state-row.loading');
    });
    shown.push(Date.now() - t0);
    // A change of view inside the loaded page (what the calendar and filters do): from the
    // change to the rows and total on screen.
    await page.evaluate(() => { history.pushState(null, '', '/?preset=yesterday'); });
    changed.push(await page.evaluate(async v => {
      const t0 = performance.now();
      history.pushState(null, '', v);
      const loading = loadCalls(); // eslint-disable-line no-undef
      await loading;
      return performance.now() - t0;
    }, view));
    total = await page.textContent('#total');
    rows = await page.locator('#calls tr.call').count();
  }
  console.log(`| \`${view}\` | ${pct(api, 0.5).toFixed(1)} / ${pct(api, 0.95).toFixed(1)} | ${pct(changed, 0.5).toFixed(1)} / ${pct(changed, 0.95).toFixed(1)} | ${pct(shown, 0.5)} / ${pct(shown, 0.95)} | ${rows} | ${total} |`);
}
await browser.close();
