// A participant leaves: its tile disappears from the others within 2 s and its endpoint is gone
// from the bridge; it rejoins and is seen (and decoded) again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor, withWorld } from './harness.mjs';

test('a participant leaves and rejoins', { timeout: 180000 }, async () => {
  await withWorld('leave', async (world) => {
    const [ada, bob, cyd] = [
      await world.join('door', 'ada'),
      await world.join('door', 'bob'),
      await world.join('door', 'cyd'),
    ];
    await ada.waitForTiles(['bob', 'cyd']);
    await bob.waitForDecodedVideo(2);
    assert.equal(await world.bridgeMetric('tutti_bridge_endpoints'), 3);

    await cyd.leave();
    await Promise.all([ada.waitForTiles(['bob'], 5000), bob.waitForTiles(['ada'], 5000)]);
    // Measured in the pages (one machine, one clock): Leave clicked → tile removed.
    const [clicked] = await cyd.events('leave-clicked');
    for (const person of [ada, bob]) {
      const [removed] = (await person.events('tile-removed')).filter((e) => e.name === 'cyd');
      const delay = removed.at - clicked.at;
      console.log(`${person.name} removed cyd's tile ${delay} ms after cyd clicked Leave`);
      assert.ok(delay <= 2000, `${person.name} removed cyd's tile after ${delay} ms`);
    }
    await waitFor('the bridge to expire cyd\'s endpoint', async () => (await world.bridgeMetric('tutti_bridge_endpoints')) === 2, 5000);

    // Rejoin from the same page.
    await cyd.page.click('#join-button');
    await cyd.waitForState('connected');
    await Promise.all([
      ada.waitForTiles(['bob', 'cyd']),
      bob.waitForTiles(['ada', 'cyd']),
      cyd.waitForTiles(['ada', 'bob']),
    ]);
    assert.equal(await world.bridgeMetric('tutti_bridge_endpoints'), 3);
    await cyd.waitForDecodedVideo(2);
    // ada's earlier stream from cyd ended; the new one decodes.
    await waitFor('ada to decode cyd\'s new video', async () => {
      const cydSsrcs = await ada.videoSsrcsFrom('cyd');
      const decoding = await ada.decodedVideo();
      return decoding.some((v) => cydSsrcs.includes(v.ssrc) && v.framesDecoded > 10);
    });
  });
});
