// The web UI of `genvis serve` (apps/server/webui) in a real Chromium, driven by playwright-core.
// Run through tests/server/run_node_tests.sh, which starts the server and sets
//   SERVER          http://127.0.0.1:PORT (no trailing slash)
//   API_KEY         the server's --api-key (empty: none)
//   CHROMIUM        the browser (default /usr/bin/chromium)
//   SCREENSHOT_DIR  where webui.png and webui-video.png are saved (optional)
//
// The server starts on the built-in model (32x32 images); its --models-dir holds `toy-video`, a
// toy video model (16x16, 5 frames natively) the runner trains in a few seconds. The image tests
// run first on the built-in model (the cancel test with a long image job: 150 steps, batch 8),
// then the UI switches to `toy-video`, makes and plays a video, cancels a long video job, and
// switches back to the built-in model.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const SERVER = (process.env.SERVER || '').replace(/\/+$/, '');
const API_KEY = process.env.API_KEY || '';
const skip = SERVER ? false : 'SERVER is not set (run tests/server/run_node_tests.sh)';
const PROMPT = 'grinning face';
const VIDEO_MODEL = 'toy-video';  // the runner's --models-dir entry
const VIDEO_PROMPT = 'a red circle moving right';
// Frames of the video job the cancel test stops (150 steps), capped by #frames' max (the
// server's max_frames). With 33 frames the toy model ran all 150 steps in about 1.1 s, close to
// what the UI needs to see progress and cancel; 129 frames take about 3 s, still too short once
// (the job ended before the click), so the test also asks for a batch of 8. As the job is
// cancelled within its first steps this costs the test nothing.
const LONG_VIDEO_FRAMES = 129;

// Waits until the UI leaves "running" and returns the final state with the status line.
async function settled(page, timeout) {
  await page.waitForFunction(() => ['done', 'error', 'cancelled'].includes(document.body.dataset.state),
    null, { timeout });
  return page.evaluate(() => ({ state: document.body.dataset.state, status: document.querySelector('#status').textContent }));
}

// Waits for the progress bar to show progress > 0 of the job just submitted. The previous job
// left the bar at 1/1, and a new job first shows "Queued" (no value), so this also waits for the
// step counter.
async function progressShown(page, timeout) {
  await page.waitForFunction(() => {
    const bar = document.querySelector('#progress');
    return document.body.dataset.state === 'running' && bar.hasAttribute('value') && bar.value > 0 &&
      /^Step [1-9]/.test(document.querySelector('#progress_text').textContent);
  }, null, { timeout });
  return page.textContent('#progress_text');
}

// Chooses a checkpoint in #model and waits until the UI has loaded it ("Loaded TITLE") with the
// frames field shown (video models) or hidden (image models).
async function switchModel(page, title, video) {
  await page.selectOption('#model', title);
  await page.waitForFunction(([t, v]) => {
    const frames = document.querySelector('#frames');
    return document.querySelector('#status').textContent === `Loaded ${t}` && !document.querySelector('#model').disabled &&
      document.querySelector('#frames_field').hidden === !v && frames.disabled === !v;
  }, [title, video], { timeout: 120_000 }).catch(async (err) => {
    throw new Error(`the UI did not switch to ${title}: status "${await page.textContent('#status')}" (${err.message})`);
  });
  assert.equal(await page.inputValue('#model'), title);
  assert.notEqual(await page.evaluate(() => document.body.dataset.state), 'running', 'switching runs no job');
  assert.ok(await page.isEnabled('#generate'), 'Generate is enabled after the switch');
  // The sampler picker lists the new model's samplers (a flow model has its own).
  const offered = await page.$$eval('#sampler option', (os) => os.map((o) => o.value).filter(Boolean));
  const served = (await (await fetch(`${SERVER}/sdapi/v1/samplers`, {
    headers: API_KEY ? { Authorization: `Bearer ${API_KEY}` } : {} })).json()).map((x) => x.name);
  assert.deepEqual(offered, served, 'the sampler picker follows the model');
}

test('web UI: generate, show the result, cancel a long job; the same with a video model', { skip, timeout: 600_000 }, async (t) => {
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
    const progress = await progressShown(page, 120_000);
    await page.click('#cancel');
    const end = await settled(page, 120_000);
    assert.equal(end.state, 'cancelled', `state ${end.state}, status "${end.status}" (cancelled at "${progress}")`);
    assert.equal(end.status, 'Cancelled');
    assert.equal(await page.locator('#gallery .result').count(), before, 'a cancelled job adds no result');
    assert.ok(await page.isEnabled('#generate'), 'Generate is enabled again');
    assert.ok(await page.isDisabled('#cancel'), 'Cancel is disabled again');
  });

  let builtin = '';  // the start model's title: the first (and selected) entry of #model
  await t.test('the model picker lists the built-in model and the toy video model', async () => {
    const options = await page.$$eval('#model option', (os) => os.map((o) => ({ value: o.value, selected: o.selected })));
    assert.ok(options.length >= 2, `#model lists the checkpoints: ${JSON.stringify(options)}`);
    assert.ok(options[0].selected, `the start model is listed first and selected: ${JSON.stringify(options)}`);
    builtin = options[0].value;
    assert.ok(options.some((o) => o.value === VIDEO_MODEL), `#model lists ${VIDEO_MODEL}: ${JSON.stringify(options)}`);
    assert.ok(await page.isHidden('#frames_field'), 'no frames field for an image model');
  });

  await t.test('a video model: generate a 5-frame video and play it', async () => {
    const before = await page.locator('#gallery .result').count();
    await switchModel(page, VIDEO_MODEL, true);
    assert.match(await page.textContent('#model_name'), new RegExp(VIDEO_MODEL));
    await page.fill('#prompt', VIDEO_PROMPT);
    await page.fill('#batch_size', '');  // the image cancel test left 8
    await page.fill('#frames', '5');
    await page.fill('#steps', '4');
    const started = Date.now();
    await page.click('#generate');
    const end = await settled(page, 120_000);
    assert.equal(end.state, 'done', `state ${end.state}, status "${end.status}"`);
    assert.equal(end.status, 'Done: video');
    t.diagnostic(`5-frame 4-step video job: ${Date.now() - started} ms in the UI`);
    assert.equal(await page.locator('#gallery .result').count(), before + 1, 'a video job adds one result');

    const newest = page.locator('#gallery .result').first();
    const video = newest.locator('video');
    assert.equal(await video.count(), 1, 'the newest result is a <video>');
    const src = await video.getAttribute('src');
    assert.ok(src, 'the video has a src');
    // With an API key the UI fetches the file itself and plays a blob: URL (a <video> cannot
    // send the Authorization header); data-url keeps the server's URL.
    const url = await video.getAttribute('data-url');
    assert.match(url || '', /^\/genvis\/v1\/files\/[^/]+\.mp4$/, `data-url ${url}`);
    if (API_KEY) assert.match(src, /^blob:/, `src ${src}`);

    // Real playback in Chromium: the server writes H.264 MP4 by default.
    const played = await video.evaluate(async (e) => {
      const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
      const snapshot = (extra) => ({
        readyState: e.readyState, duration: e.duration, width: e.videoWidth, height: e.videoHeight,
        currentTime: e.currentTime, paused: e.paused, error: e.error && `${e.error.code} ${e.error.message}`, ...extra,
      });
      for (let i = 0; i < 200 && e.readyState < 2 && !e.error; ++i) await sleep(100);  // loadeddata
      if (e.error || e.readyState < 2) return snapshot({ stage: 'load' });
      try {
        await e.play();
      } catch (err) {
        return snapshot({ stage: 'play', playError: String(err) });
      }
      for (let i = 0; i < 100 && !(e.currentTime > 0) && !e.error; ++i) await sleep(50);  // it advances
      return snapshot({ stage: 'playing' });
    });
    assert.equal(played.error, null, `the video decodes: ${JSON.stringify(played)}`);
    assert.equal(played.stage, 'playing', `the video plays: ${JSON.stringify(played)}`);
    assert.ok(played.readyState >= 2, `readyState ${played.readyState}: ${JSON.stringify(played)}`);
    assert.ok(played.duration > 0 && Number.isFinite(played.duration), `duration ${played.duration}`);
    assert.ok(played.currentTime > 0, `playback advances: ${JSON.stringify(played)}`);
    assert.equal(played.paused, false);
    assert.deepEqual([played.width, played.height], [16, 16], 'the toy model makes 16x16 frames');

    // The file itself, as the server serves it.
    const res = await fetch(`${SERVER}${url}`, { headers: API_KEY ? { Authorization: `Bearer ${API_KEY}` } : {} });
    assert.equal(res.status, 200, `GET ${url}`);
    assert.match(res.headers.get('content-type') || '', /^video\/mp4\b/);
    const mp4 = Buffer.from(await res.arrayBuffer());
    assert.equal(mp4.toString('latin1', 4, 8), 'ftyp', 'an MP4 starts with an ftyp box');

    const infotext = await newest.locator('.infotext').textContent();
    assert.ok(infotext.includes(VIDEO_PROMPT), `infotext holds the prompt: ${JSON.stringify(infotext)}`);
    assert.ok(infotext.includes('Steps: 4'), `infotext holds "Steps: 4": ${JSON.stringify(infotext)}`);
    assert.ok(infotext.includes('Frames: 5'), `infotext holds "Frames: 5": ${JSON.stringify(infotext)}`);

    if (process.env.SCREENSHOT_DIR) {
      fs.mkdirSync(process.env.SCREENSHOT_DIR, { recursive: true });
      await page.screenshot({ path: path.join(process.env.SCREENSHOT_DIR, 'webui-video.png'), fullPage: true });
    }
  });

  await t.test('Cancel stops a long video job once it shows progress', async () => {
    const before = await page.locator('#gallery .result').count();
    const maxFrames = Number(await page.getAttribute('#frames', 'max')) || Infinity;
    let frames = Math.min(LONG_VIDEO_FRAMES, maxFrames);
    if (frames % 2 === 0) frames -= 1;  // the toy model makes 1 + 2k frames
    await page.fill('#frames', String(frames));
    await page.fill('#steps', '150');
    // A batch of 8 makes the job long enough (about 25 s on 2 quiet cores) that it is still running
    // when the click lands; one clip alone took about 3 s and once finished before it.
    await page.fill('#batch_size', '8');
    const started = Date.now();
    await page.click('#generate');
    const progress = await progressShown(page, 120_000);
    const shown = Date.now();
    await page.click('#cancel');
    const end = await settled(page, 120_000);
    t.diagnostic(`${frames}-frame 150-step video job: progress after ${shown - started} ms, cancelled at "${progress}", ` +
      `settled ${Date.now() - shown} ms after`);
    assert.equal(end.state, 'cancelled', `state ${end.state}, status "${end.status}" (cancelled at "${progress}")`);
    assert.equal(end.status, 'Cancelled');
    assert.equal(await page.locator('#gallery .result').count(), before, 'a cancelled job adds no result');
    assert.ok(await page.isEnabled('#generate'), 'Generate is enabled again');
    assert.ok(await page.isDisabled('#cancel'), 'Cancel is disabled again');
    await page.fill('#batch_size', '');
  });

  await t.test('switching back to the built-in model', async () => {
    assert.ok(builtin, 'the built-in model was found in #model');
    await switchModel(page, builtin, false);
    assert.doesNotMatch(await page.textContent('#model_name'), new RegExp(VIDEO_MODEL));
    const info = await page.evaluate(async (key) => {
      const res = await fetch('/genvis/v1/info', { headers: key ? { Authorization: `Bearer ${key}` } : {} });
      return res.json();
    }, API_KEY);
    assert.equal(info.model.checkpoint, builtin, `the server's resident model: ${JSON.stringify(info.model.checkpoint)}`);
    assert.equal(info.model.supports.video, false);
  });

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
});
