// The web UI of `genvis serve` (apps/server/webui) in a real Chromium, driven by playwright-core.
// Run through tests/server/run_node_tests.sh, which starts the server and sets
//   SERVER          http://127.0.0.1:PORT (no trailing slash)
//   API_KEY         the server's --api-key (empty: none)
//   CHROMIUM        the browser (default /usr/bin/chromium)
//   SCREENSHOT_DIR  where webui.png is saved (optional)
//
// The built-in model makes 32x32 images and there is no video model in this server, so the
// cancel test runs a long image job (150 steps, batch 8) instead of a video.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const SERVER = (process.env.SERVER || '').replace(/\/+$/, '');
const API_KEY = process.env.API_KEY || '';
const skip = SERVER ? false : 'SERVER is not set (run tests/server/run_node_tests.sh)';
const PROMPT = 'grinning face';

// Waits until the UI leaves "running" and returns the final state with the status line.
async function settled(page, timeout) {
  await page.waitForFunction(() => ['done', 'error', 'cancelled'].includes(document.body.dataset.state),
    null, { timeout });
  return page.evaluate(() => ({ state: document.body.dataset.state, status: document.querySelector('#status').textContent }));
}

test('web UI: generate, show the result, cancel a long job', { skip, timeout: 420_000 }, async (t) => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
    headless: true,
  });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  await page.goto(`${SERVER}/`);
  // The first load of the pickers ends with "Ready", or with "API key required" when the server
  // wants a key; wait for it to settle before setting the key, so that it cannot overwrite the
  // status of the reload the key triggers.
  await page.waitForFunction(() => document.querySelector('#status').textContent !== '');
  if (API_KEY) {
    await page.fill('#apikey', API_KEY);
    await page.locator('#apikey').dispatchEvent('change');  // as when the field loses focus
  }
  await page.waitForFunction(() => document.querySelector('#status').textContent === 'Ready', null, { timeout: 30_000 })
    .catch(async (err) => {
      throw new Error(`the UI did not get ready: status "${await page.textContent('#status')}" (${err.message})`);
    });
  assert.equal(await page.evaluate(() => document.body.dataset.state), 'idle');
  assert.notEqual((await page.textContent('#model_name')).trim(), '', 'the resident model is named');

  await t.test('a 4-step generation shows its image and infotext', async () => {
    await page.fill('#prompt', PROMPT);
    await page.fill('#steps', '4');
    await page.click('#generate');
    const end = await settled(page, 120_000);
    assert.equal(end.state, 'done', `state ${end.state}, status "${end.status}"`);

    const newest = page.locator('#gallery .result').first();
    const img = newest.locator('img');
    const decoded = await img.evaluate(async (e) => {
      try {
        await e.decode();
        return { ok: true, width: e.naturalWidth, height: e.naturalHeight, src: e.src.slice(0, 22) };
      } catch (err) {
        return { ok: false, error: String(err), width: e.naturalWidth };
      }
    });
    assert.ok(decoded.ok, `the result image decodes: ${JSON.stringify(decoded)}`);
    assert.ok(decoded.width > 0, `naturalWidth ${decoded.width}`);
    assert.equal(decoded.src, 'data:image/png;base64,');
    const infotext = await newest.locator('.infotext').textContent();
    assert.ok(infotext.includes(PROMPT), `infotext holds the prompt: ${JSON.stringify(infotext)}`);
    assert.ok(infotext.includes('Steps: 4'), `infotext holds "Steps: 4": ${JSON.stringify(infotext)}`);

    if (process.env.SCREENSHOT_DIR) {
      fs.mkdirSync(process.env.SCREENSHOT_DIR, { recursive: true });
      await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, 'webui.png'), fullPage: true });
    }
  });

  await t.test('Cancel stops a long job once it shows progress', async () => {
    const before = await page.locator('#gallery .result').count();
    await page.fill('#steps', '150');
    await page.fill('#batch_size', '8');
    await page.click('#generate');
    // Progress > 0 of this job: the previous job left the bar at 1/1, and a new job first
    // shows "Queued" (no value), so also wait for the step counter.
    await page.waitForFunction(() => {
      const bar = document.querySelector('#progress');
      return document.body.dataset.state === 'running' && bar.hasAttribute('value') && bar.value > 0 &&
        /^Step [1-9]/.test(document.querySelector('#progress_text').textContent);
    }, null, { timeout: 120_000 });
    const progress = await page.textContent('#progress_text');
    await page.click('#cancel');
    const end = await settled(page, 120_000);
    assert.equal(end.state, 'cancelled', `state ${end.state}, status "${end.status}" (cancelled at "${progress}")`);
    assert.equal(end.status, 'Cancelled');
    assert.equal(await page.locator('#gallery .result').count(), before, 'a cancelled job adds no result');
    assert.ok(await page.isEnabled('#generate'), 'Generate is enabled again');
    assert.ok(await page.isDisabled('#cancel'), 'Cancel is disabled again');
  });

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});
