// Simulcast layer choice: three lib-jitsi-meet participants capture 1280x720 at 15 fps, so
// Chromium sends three layers (it does from 960x540 up). Ada puts Bob on stage and decodes him at
// the height of his highest active encoding; Cyd asks for 180 lines and decodes him at 180 — the
// bridge forwards each receiver the layer its layout asks for, under one SSRC per source.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, waitFor, withWorld } from './harness.mjs';

test('each receiver gets the layer its layout asks for', { timeout: 240000 }, async () => {
  await withWorld('simulcast', async (world) => {
    const capture = { resolution: '720', fps: '15' };
    const names = ['ada', 'bob', 'cyd'];
    const people = [];
    for (const name of names) {
      // Thumbnails (180) until a layout asks for more, as before any choice of layout.
      people.push(await world.join('layers', name, { capture, query: { receive: '180' } }));
    }
    const [ada, bob, cyd] = people;
    for (const person of people) {
      await person.waitForTiles(names.filter((n) => n !== person.name));
    }
    const bobId = await bob.page.evaluate(() => window.tutti.conference.myUserId());
    // Stage view as lib-jitsi-meet's own layouts send it, and a thumbnail-only view.
    await ada.page.evaluate((id) => window.tutti.conference.setReceiverConstraints({
      lastN: -1,
      selectedEndpoints: [],
      onStageEndpoints: [id],
      defaultConstraints: { maxHeight: 180 },
      constraints: { [id]: { maxHeight: 720 } },
    }), bobId);
    await cyd.page.evaluate(() => window.tutti.conference.setReceiverConstraints({
      lastN: -1,
      selectedEndpoints: [],
      onStageEndpoints: [],
      defaultConstraints: { maxHeight: 180 },
      constraints: {},
    }));

    const seen = new Set();
    /** The height `person` decodes Bob's video at (0 while it decodes none). */
    const bobDecodedBy = async (person) => {
      const ssrcs = await person.videoSsrcsFrom('bob');
      assert.equal(ssrcs.length, 1, `${person.name} is told of one video stream from bob`);
      const decoded = (await person.decodedVideo()).find((v) => ssrcs.includes(v.ssrc));
      const height = decoded?.frameHeight ?? 0;
      if (height > 0) {
        seen.add(`${person.name}:${height}`);
      }
      return height;
    };
    /** The heights of Bob's encodings that encoded frames over the last second. */
    const bobSends = async () => {
      const before = await bob.stats();
      await sleep(1000);
      const after = await bob.stats();
      return after.outboundVideo
        .filter((e) => {
          const then = before.outboundVideo.find((b) => b.ssrc === e.ssrc);
          return then && e.framesEncoded > then.framesEncoded && e.frameHeight > 0;
        })
        .map((e) => e.frameHeight);
    };

    let last = {};
    await waitFor('ada to decode bob at the height of his highest active encoding', async () => {
      const active = await bobSends();
      const got = await bobDecodedBy(ada);
      last = { active, got };
      const top = Math.max(...active);
      return active.length >= 2 && top >= 2 * Math.min(...active) && got === top;
    }, 90000).catch((error) => {
      throw new Error(`${error.message}; last: bob's active heights ${last.active}, ada decodes ${last.got}`);
    });
    await waitFor('cyd to decode bob at 180 lines', async () => (await bobDecodedBy(cyd)) === 180, 30000);
    // Both at once: the bridge sends the two receivers different layers of the same source.
    const [adaNow, cydNow] = [await bobDecodedBy(ada), await bobDecodedBy(cyd)];
    console.log(`bob sends heights ${last.active}; ada decodes ${adaNow}, cyd ${cydNow}`);
    assert.ok(adaNow >= 360 && cydNow === 180, `ada decodes ${adaNow}, cyd ${cydNow}`);
    assert.ok(new Set([...seen].map((s) => s.split(':')[1])).size >= 2, `heights seen: ${[...seen]}`);

    const metrics = await world.bridgeMetrics();
    assert.match(metrics, /tutti_bridge_layer_switches_total\{direction="up"\} [1-9]/);
  });
});
