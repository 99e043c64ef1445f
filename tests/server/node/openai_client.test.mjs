// `genvis serve` driven by the official OpenAI Node client (docs/server.md, "OpenAI images API").
// Run through tests/server/run_node_tests.sh, which starts the server and sets
//   SERVER   http://127.0.0.1:PORT (no trailing slash)
//   API_KEY  the server's --api-key (empty: none)
import test from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const SERVER = (process.env.SERVER || '').replace(/\/+$/, '');
const API_KEY = process.env.API_KEY || '';
const skip = SERVER ? false : 'SERVER is not set (run tests/server/run_node_tests.sh)';

// The client insists on a key; without --api-key the server ignores whatever is sent.
const client = (apiKey = API_KEY || 'unused') =>
  new OpenAI({ apiKey, baseURL: `${SERVER}/v1`, maxRetries: 0, timeout: 180_000 });

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// Splits a PNG into its chunks: [{type, data}], checking the signature and chunk bounds.
function pngChunks(buf) {
  assert.ok(buf.length > 8 && buf.subarray(0, 8).equals(PNG_SIGNATURE), 'PNG signature');
  const chunks = [];
  for (let at = 8; at < buf.length;) {
    assert.ok(at + 12 <= buf.length, `truncated chunk header at ${at}`);
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    assert.ok(at + 12 + length <= buf.length, `chunk ${type} runs past the end`);
    chunks.push({ type, data: buf.subarray(at + 8, at + 8 + length) });
    at += 12 + length;
    if (type === 'IEND') break;
  }
  return chunks;
}

// Checks a PNG and returns {width, height, text: {keyword: value}} (tEXt chunks only).
function inspectPng(buf) {
  const chunks = pngChunks(buf);
  assert.equal(chunks[0]?.type, 'IHDR', 'the first chunk is IHDR');
  assert.equal(chunks.at(-1)?.type, 'IEND', 'the last chunk is IEND');
  assert.ok(chunks.some((c) => c.type === 'IDAT'), 'has image data');
  const text = {};
  for (const c of chunks.filter((x) => x.type === 'tEXt')) {
    const nul = c.data.indexOf(0);
    text[c.data.toString('latin1', 0, nul)] = c.data.toString('latin1', nul + 1);
  }
  return { width: chunks[0].data.readUInt32BE(0), height: chunks[0].data.readUInt32BE(4), text };
}

test('images.generate b64_json: n=2 PNGs with generation parameters', { skip, timeout: 240_000 }, async () => {
  const res = await client().images.generate({
    prompt: 'grinning face', n: 2, size: '32x32', response_format: 'b64_json',
  });
  assert.equal(typeof res.created, 'number');
  assert.ok(Array.isArray(res.data), 'data is an array');
  assert.equal(res.data.length, 2);
  for (const [i, item] of res.data.entries()) {
    assert.equal(typeof item.b64_json, 'string', `data[${i}].b64_json`);
    const png = inspectPng(Buffer.from(item.b64_json, 'base64'));
    assert.equal(png.width, 32, `data[${i}] width`);
    assert.equal(png.height, 32, `data[${i}] height`);
    assert.equal(typeof png.text.parameters, 'string', `data[${i}] has a "parameters" tEXt chunk`);
    assert.match(png.text.parameters, /^grinning face/, `data[${i}] parameters start with the prompt`);
    assert.match(png.text.parameters, /Steps: \d+/, `data[${i}] parameters hold "Steps:"`);
  }
});

test('images.generate url: the url serves the PNG', { skip, timeout: 240_000 }, async () => {
  const res = await client().images.generate({
    prompt: 'grinning face', n: 1, size: '32x32', response_format: 'url',
  });
  assert.equal(res.data.length, 1);
  const { url } = res.data[0];
  assert.equal(typeof url, 'string');
  const u = new URL(url);
  assert.equal(u.hostname, '127.0.0.1', `url ${url} points at the server`);
  const headers = API_KEY ? { Authorization: `Bearer ${API_KEY}` } : {};
  const got = await fetch(url, { headers });
  assert.equal(got.status, 200, `GET ${url}`);
  assert.match(got.headers.get('content-type') || '', /^image\/png\b/);
  const png = inspectPng(Buffer.from(await got.arrayBuffer()));
  assert.equal(png.width, 32);
  assert.match(png.text.parameters || '', /Steps: \d+/);
});

test('models.list lists the resident model', { skip }, async () => {
  const page = await client().models.list();
  assert.ok(page.data.length >= 1, 'at least one model');
  for (const m of page.data) {
    assert.equal(typeof m.id, 'string');
    assert.ok(m.id.length > 0);
    assert.equal(m.object, 'model');
  }
});

test('a bad size raises BadRequestError naming the field', { skip }, async () => {
  await assert.rejects(
    client().images.generate({ prompt: 'grinning face', size: 'big' }),
    (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `BadRequestError, got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 400);
      assert.equal(err.param, 'size');
      assert.equal(err.type, 'invalid_request_error');
      return true;
    },
  );
});

test('a wrong API key raises AuthenticationError', { skip: skip || (API_KEY ? false : 'the server has no API key') }, async () => {
  await assert.rejects(
    client(`${API_KEY}-wrong`).images.generate({ prompt: 'grinning face', size: '32x32' }),
    (err) => {
      assert.ok(err instanceof OpenAI.AuthenticationError, `AuthenticationError, got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 401);
      return true;
    },
  );
  await assert.rejects(client(`${API_KEY}-wrong`).models.list(), OpenAI.AuthenticationError);
});
