// The stack on ejabberd (Debian's 23.01) instead of Prosody: lib-jitsi-meet pages log in as
// anonymous guests, two over the WebSocket and one over BOSH, and decode each other's video and
// hear each other through the bridge; one leaving is gone from the others' pages.
import { test } from 'node:test';
import { waitFor, withWorld } from './harness.mjs';

test('a call of three on ejabberd, over the WebSocket and BOSH', { timeout: 180000 }, async () => {
  await withWorld('ejabberd', async (world) => {
    const joins = [['ada', 'websocket'], ['bob', 'websocket'], ['cyd', 'bosh']];
    const people = [];
    for (const [name, transport] of joins) {
      const started = Date.now();
      people.push(await world.join('ej', name, { query: { transport } }));
      console.log(`${name} (${transport}) connected ${Date.now() - started} ms after opening the page`);
    }
    for (const person of people) {
      await person.waitForDecodedVideo(2);
      await person.waitForAudio(2);
    }
    const [ada, bob, cyd] = people;
    const left = Date.now();
    // Leaving with the page's button (a closed page's BOSH session lasts until its inactivity
    // timeout).
    await cyd.leave();
    for (const person of [ada, bob]) {
      await waitFor(`${person.name} to see cyd leave`, async () => !(await person.remoteTiles()).includes('cyd'), 10000);
    }
    console.log(`cyd's tile gone from the others ${Date.now() - left} ms after it left`);
  }, { server: 'ejabberd' });
});
