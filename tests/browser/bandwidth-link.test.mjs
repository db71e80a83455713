// A receiver behind a slow link (issue 14): Cyd's Chromium runs on a host of its own, and the
// link from the stack to it is capped with a token bucket (tbf) on the stack's end. Ada sends
// Chromium's fake camera at 1280x720 in three simulcast layers (720, 360 and 180 lines; the top
// one above 600 kbit/s); Bob and Cyd (their cameras muted) watch her at up to 720 lines.
// Capped at 600 kbit/s, Cyd keeps decoding a lower layer (its frames rising, at most one
// freeze) while Bob, on a free link, gets the top one; the cap lifted, Cyd gets the top layer
// again within 15 s. Only the bridge's estimate of Cyd's link (from Cyd's transport-cc
// feedback) tells it what fits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, waitFor, withWorld } from './harness.mjs';

const CAP_KBPS = 600;
const TOP = 720;

test('a receiver behind a 600 kbit/s link decodes a lower layer, and the top one once the cap is lifted', { timeout: 180000 }, async () => {
  await withWorld('bandwidth-link', async (world) => {
    const room = 'link';
    const ada = await world.join(room, 'ada', { capture: { resolution: '720', fps: '15' }, query: { receive: '180' } });
    const watcher = { capture: { resolution: '180', fps: '15' }, query: { receive: String(TOP) } };
    const bob = await world.join(room, 'bob', watcher);
    const cyd = await world.join(room, 'cyd', { ...watcher, host: 0 });
    // Only Ada's video matters; the others' encoders would take the CPU the decoders need.
    await Promise.all([bob.mute('video', true), cyd.mute('video', true)]);

    /** Ada's video as `person` decodes it: height (0: none yet), frames decoded, freezes. */
    const adaSeenBy = async (person) => {
      const ssrcs = await person.videoSsrcsFrom('ada');
      const stats = await person.stats();
      const video = stats.inboundVideo.find((v) => ssrcs.includes(v.ssrc) && v.framesDecoded > 0);
      return { height: video?.frameHeight ?? 0, frames: video?.framesDecoded ?? 0, freezes: video?.freezeCount ?? 0 };
    };
    /**
     * The bridge's estimate towards `person`, what limits it, and the measured bitrates (kbit/s)
     * of the layers of the active sources it may get (height:kbit/s, the one it gets marked *).
     */
    const estimateFor = async (person) => {
      const id = await person.id();
      const report = (await world.receivers()).find((r) => r.participant_id === id || r.endpoint_id === id);
      if (!report) {
        return 'unknown';
      }
      const layers = report.sources.filter((s) => s.encodings.some((e) => e.active)).map((s) => s.encodings
        .map((e, i) => `${e.height}:${Math.round((e.bps_by_temporal_layer.at(-1) ?? 0) / 1000)}${s.forwarding === i ? '*' : ''}`)
        .join(' '));
      return `${report.estimate_bps} (${report.estimate_limited_by}) ${layers.join(', ')}`;
    };

    const startedAt = Date.now();
    await waitFor('bob and cyd to decode ada at the top layer', async () => {
      const [b, c] = [await adaSeenBy(bob), await adaSeenBy(cyd)];
      return b.height === TOP && c.height === TOP;
    }, 60000);
    console.log(`both decode ada at ${TOP} after ${Date.now() - startedAt} ms`);

    world.shape(0, CAP_KBPS);
    const shapedAt = Date.now();
    const linkBefore = world.linkStats(0);
    const atCap = await adaSeenBy(cyd);
    let seen;
    const below = await waitFor('cyd to decode ada below the top layer', async () => {
      const c = await adaSeenBy(cyd);
      seen = { ...c, estimate: await estimateFor(cyd), link: world.linkStats(0) };
      return c.height > 0 && c.height < TOP && c;
    }, 10000).catch((e) => {
      throw new Error(`${e.message}; cyd then: ${JSON.stringify(seen)} (at the cap: ${JSON.stringify(atCap)}, link ${JSON.stringify(linkBefore)})`);
    });
    const downAfterMs = Date.now() - shapedAt;

    // Ten seconds at the cap: Cyd decodes a lower layer all along, and on; Bob the top one.
    const samples = [];
    let previous = await adaSeenBy(cyd);
    let dropped = world.linkStats(0).dropped;
    for (let second = 0; second < 10; second += 1) {
      await sleep(1000);
      const [b, c] = [await adaSeenBy(bob), await adaSeenBy(cyd)];
      const link = world.linkStats(0);
      samples.push({
        bob: b.height,
        cyd: c.height,
        cydFrames: c.frames - previous.frames,
        cydFreezes: c.freezes - previous.freezes,
        dropped: link.dropped - dropped,
        bobs: await estimateFor(bob),
        cyds: await estimateFor(cyd),
      });
      previous = c;
      dropped = link.dropped;
    }
    const linkAfter = world.linkStats(0);
    const shapedS = (Date.now() - shapedAt) / 1000;
    const linkKbps = ((linkAfter.bytes - linkBefore.bytes) * 8) / 1000 / shapedS;
    console.log(`capped at ${CAP_KBPS} kbit/s: cyd below ${TOP} after ${downAfterMs} ms; per second ${JSON.stringify(samples)}; `
      + `link ${linkKbps.toFixed(0)} kbit/s, ${linkAfter.dropped - linkBefore.dropped} packets dropped; `
      + `cyd's freezes ${atCap.freezes} at the cap, ${below.freezes} when below ${TOP}, ${previous.freezes} at the end`);
    for (const [second, s] of samples.entries()) {
      assert.ok(s.cyd > 0 && s.cyd < TOP, `second ${second} at the cap: cyd decodes ada at ${s.cyd}`);
    }
    // Bob's link is free: the top layer (but for moments when Ada's encoder, on a machine
    // running three Chromiums, sends less).
    const bobAtTop = samples.filter((s) => s.bob === TOP).length;
    assert.ok(bobAtTop >= 8, `bob decoded ada at ${TOP} in ${bobAtTop} of 10 seconds`);
    // Frames keep coming: some in every second, at least 5 a second (Ada sends 15).
    const stalled = samples.filter((s) => s.cydFrames === 0).length;
    const frames = samples.reduce((sum, s) => sum + s.cydFrames, 0);
    assert.ok(stalled === 0 && frames >= 50, `cyd decoded ${frames} frames in 10 s, none in ${stalled} seconds`);
    // Once on the lower layer (the move down is a switch at a key frame, with the link
    // dropping what the top layer had queued).
    const froze = previous.freezes - below.freezes;
    assert.ok(froze <= 1, `cyd froze ${froze} times on the lower layer`);

    world.shape(0, null);
    const liftedAt = Date.now();
    await waitFor(`cyd to decode ada at ${TOP} again`, async () => (await adaSeenBy(cyd)).height === TOP, 15000, 500);
    console.log(`cap lifted: cyd at ${TOP} after ${Date.now() - liftedAt} ms (estimate ${await estimateFor(cyd)})`);
  }, { hosts: 1 });
});
