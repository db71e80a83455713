// A standards Jingle client (standard-client.js: XMPP and Jingle<->SDP written by hand, caps
// without any Jitsi feature) in a room with lib-jitsi-meet pages: the focus offers it plain XEP
// Jingle, one content per remote stream; routing by MID alone (its session description lists no
// remote SSRC; the bridge writes each stream's MID), it decodes each page's video and audio as
// streams of their own (one MID each); it signals no SSRC of its own either (no XEP-0339 source
// in its session-accept: the bridge learns its SSRCs from the MIDs of its packets) and the pages
// decode its video and hear it; a page that joins and leaves reaches it as content-add and
// content-remove.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor, withWorld } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));

/** Per MID of the standards client's session: what it receives. */
function received(page) {
  return page.evaluate(() => window.standardClient.client.received());
}

function decodingVideos(byMid) {
  return Object.entries(byMid).filter(([, r]) => r.kind === 'video' && r.framesDecoded > 0).map(([mid]) => mid);
}

function hearing(byMid) {
  return Object.entries(byMid).filter(([, r]) => r.kind === 'audio' && r.audioEnergy > 0).map(([mid]) => mid);
}

test('a standards client and lib-jitsi-meet pages see and hear each other', { timeout: 240000 }, async () => {
  await withWorld('standard', async (world) => {
    const ada = await world.join('mixed', 'ada');
    const bob = await world.join('mixed', 'bob');

    // Timed from opening the page, as a lib-jitsi-meet page's join is below (the same page,
    // whose lib-jitsi-meet is loaded but not used).
    const started = Date.now();
    const context = await world.browser.newContext();
    const gus = await context.newPage();
    gus.on('console', (message) => console.error(`[gus ${message.type()}] ${message.text()}`));
    await gus.goto(world.stack.url);
    await gus.addScriptTag({ path: join(here, 'standard-client.js') });
    await gus.evaluate(() => window.standardClient.join(`mixed@${window.TUTTI_CONFIG.muc}`, 'gus', { sources: false }));
    try {
      const byMid = await waitFor('gus to decode ada\'s and bob\'s video and hear their audio', async () => {
        const now = await received(gus);
        return decodingVideos(now).length === 2 && hearing(now).length === 2 && now;
      }, 30000);
      console.log(`gus (standards client) decodes both videos ${Date.now() - started} ms after opening its page: ${JSON.stringify(byMid)}`);
      // Each stream on a transceiver of its own: two video MIDs with two different SSRCs. Its
      // offer lists no remote SSRCs, so Chromium routed each by the MID the bridge wrote into
      // its packets (without it, nothing would decode).
      const videos = decodingVideos(byMid);
      assert.deepEqual(videos.map((mid) => mid.split('-')[0]), ['video', 'video']);
      assert.notEqual(byMid[videos[0]].ssrc, byMid[videos[1]].ssrc);
      for (const [mid, report] of Object.entries(byMid)) {
        assert.equal(report.mid, mid, `the stream received on ${mid} is reported under it`);
      }
      const offered = await gus.evaluate(() => window.standardClient.client.pc.remoteDescription.sdp);
      assert.ok(!/^a=ssrc:/m.test(offered), 'no SSRC in the offer it routes by');

      // Its own streams: no XEP-0339 source in its accept, routed by MID on the way in, yet the
      // pages decode its video and hear its audio (without routing by MID, its packets would be
      // dropped as unknown SSRCs and they would decode one video and hear one page).
      const accept = await gus.evaluate(() => window.standardClient.client.accept);
      assert.ok(!/<source /.test(accept), `no source in gus's session-accept: ${accept}`);
      const learnt = await waitFor('the bridge to learn gus\'s audio and video SSRCs', async () => {
        const count = await world.bridgeMetric('tutti_bridge_streams_learnt_total');
        return count >= 2 && count;
      }, 10000);
      const drops = await world.bridgeMetrics();
      console.log(`the bridge learnt ${learnt} of gus's SSRCs from their MIDs; ${drops.split('\n').filter((l) => /reason="(unknown_mid|mid_taken|unknown_ssrc)"/.test(l)).join(', ')}`);
      for (const page of [ada, bob]) {
        await page.waitForDecodedVideo(2);
        await page.waitForAudio(2);
      }

      // A third page joins: gus gets its streams as content-add and decodes it too.
      const cydStarted = Date.now();
      const cyd = await world.join('mixed', 'cyd');
      await cyd.waitForDecodedVideo(2);
      console.log(`cyd (lib-jitsi-meet) decodes two videos ${Date.now() - cydStarted} ms after opening its page`);
      await cyd.waitForDecodedVideo(3);
      await waitFor('gus to decode three videos', async () => decodingVideos(await received(gus)).length === 3, 20000);
      // It leaves: the contents go away with content-remove.
      await cyd.page.close();
      const jingles = await waitFor('a content-remove to gus', async () => {
        const all = await gus.evaluate(() => window.standardClient.client.jingles);
        return all.some((j) => j.action === 'content-remove') && all;
      }, 20000);
      const add = jingles.find((j) => j.action === 'content-add');
      const remove = jingles.find((j) => j.action === 'content-remove');
      assert.deepEqual([...remove.contents].sort(), [...add.contents].sort(), 'what was added is what is removed');
      assert.ok(jingles.every((j) => j.action !== 'source-add'), 'no Jitsi source-add to a standards client');
      // Its decoding follows: the removed contents' transceivers are stopped, the others go on.
      const stopped = await waitFor('the removed contents\' transceivers to stop', async () => {
        const directions = await gus.evaluate(() => window.standardClient.client.directions());
        // A rejected m-line's transceiver stops and loses its MID.
        return remove.contents.every((mid) => !(mid in directions) || ['stopped', 'inactive'].includes(directions[mid]))
          && directions;
      }, 10000);
      console.log(`after the content-remove of ${remove.contents}: ${JSON.stringify(stopped)}`);
      // Routed by MID alone, a stream's receive statistics can be missing for a moment after the
      // renegotiation (Chromium re-learns its SSRC from the next packet with the MID).
      const before = await waitFor('gus\'s statistics of ada\'s and bob\'s video', async () => {
        const now = await received(gus);
        return videos.every((mid) => now[mid]) && now;
      }, 10000);
      await waitFor('gus to go on decoding ada\'s and bob\'s video', async () => {
        const now = await received(gus);
        return videos.every((mid) => now[mid]?.framesDecoded > before[mid].framesDecoded);
      }, 10000);

      // Two more pages come and go: each under new content names, in the m-lines of the one
      // before (recycled), so the session description stays at 8 m-lines (its own 2, ada's and
      // bob's 4, the newcomer's 2) however many came and went.
      const mLines = () => gus.evaluate(() => window.standardClient.client.mLines());
      assert.equal(await mLines(), 8);
      for (const name of ['dan', 'eve']) {
        const page = await world.join('mixed', name);
        await waitFor(`gus to decode ${name}'s video too`, async () => decodingVideos(await received(gus)).length === 3, 20000);
        assert.equal(await mLines(), 8, `m-lines with ${name} in the call`);
        await page.page.close();
        await waitFor(`the content-remove of ${name}'s streams`, async () => {
          const all = await gus.evaluate(() => window.standardClient.client.jingles);
          return all.filter((j) => j.action === 'content-remove').length === (name === 'dan' ? 2 : 3);
        }, 20000);
      }
      const all = await gus.evaluate(() => window.standardClient.client.jingles);
      const names = all.filter((j) => j.action === 'content-add').flatMap((j) => j.contents);
      assert.equal(new Set(names).size, names.length, `no content name twice: ${names}`);
      assert.equal(await mLines(), 8);
      console.log(`after three pages came and went: ${await mLines()} m-lines; contents added ${names}`);
    } catch (error) {
      console.error((await gus.evaluate(() => window.standardClient.client?.log ?? [])).join('\n'));
      throw error;
    }
  });
});
