// A call over BOSH (XEP-0124/0206, Prosody's mod_bosh at /http-bind): two lib-jitsi-meet pages
// with &transport=bosh and one over WebSocket decode each other's video and hear each other;
// the BOSH pages' XMPP traffic is HTTP requests to /http-bind, and Prosody answers a CORS
// preflight from another origin (a page served elsewhere).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withWorld } from './harness.mjs';

test('lib-jitsi-meet pages call over BOSH, with one over WebSocket', { timeout: 180000 }, async () => {
  await withWorld('bosh', async (world) => {
    const joins = [['ada', 'bosh'], ['bob', 'bosh'], ['cyd', 'websocket']];
    const people = [];
    for (const [name, transport] of joins) {
      const started = Date.now();
      people.push(await world.join('bosh', name, { query: { transport } }));
      console.log(`${name} (${transport}) connected ${Date.now() - started} ms after opening the page`);
    }
    for (const person of people) {
      await person.waitForDecodedVideo(2);
      await person.waitForAudio(2);
    }
    for (const [index, [name, transport]] of joins.entries()) {
      const requests = await people[index].page.evaluate(() => performance.getEntriesByType('resource')
        .filter((entry) => new URL(entry.name).pathname === '/http-bind').length);
      if (transport === 'bosh') {
        assert.ok(requests > 2, `${name} talks XMPP over /http-bind (${requests} requests)`);
      } else {
        assert.equal(requests, 0, `${name} uses the WebSocket, not BOSH`);
      }
    }

    const origin = 'https://meet.example.org';
    const preflight = await fetch(`${world.stack.url}http-bind`, {
      method: 'OPTIONS',
      headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type' },
    });
    assert.equal(preflight.status, 200);
    assert.equal(preflight.headers.get('access-control-allow-origin'), origin);
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /POST/);
  });
});
