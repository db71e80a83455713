// Dominant speaker, last-N and sender constraints with three lib-jitsi-meet participants, each in
// a Chromium of its own whose fake microphone plays a file the test writes: Ada talks (syllables
// of a tone), Bob has the same voice but starts muted, Cyd is silent. Ada becomes the dominant
// speaker at every other page; muting Ada and unmuting Bob makes Bob dominant (the switch latency
// is printed); Cyd with lastN 1 decodes only the speaker's video; and when every receiver asks at
// most 180 lines of Ada, her camera's upper simulcast encodings stop within 5 s (the bitrate
// saved is printed), and come back when Bob puts her on stage.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { activeEncodings, sleep, waitFor, withWorld } from './harness.mjs';

/** The SSRCs whose decoded frame counts rose at `person` over two seconds. */
async function decodingSsrcs(person) {
  const before = await person.decodedVideo();
  await sleep(2000);
  const after = await person.decodedVideo();
  return after
    .filter((v) => v.framesDecoded > (before.find((b) => b.ssrc === v.ssrc)?.framesDecoded ?? 0) + 5)
    .map((v) => v.ssrc);
}

test('the speaker is dominant everywhere, last-N follows it, senders encode only what is watched', { timeout: 300000 }, async () => {
  await withWorld('speakers', async (world) => {
    const capture = { resolution: '720', fps: '15' };
    const ada = await world.join('speakers', 'ada', { capture, audio: 'voice' });
    const bob = await world.join('speakers', 'bob', { capture, audio: 'voice' });
    await bob.mute('audio', true);
    const cyd = await world.join('speakers', 'cyd', { capture, audio: 'silence' });
    const people = [ada, bob, cyd];
    for (const person of people) {
      await person.waitForTiles(people.filter((p) => p !== person).map((p) => p.name));
    }
    const [adaId, bobId] = [await ada.id(), await bob.id()];

    // Ada talks: the bridge names her at Bob's and Cyd's pages.
    for (const person of [bob, cyd]) {
      await waitFor(`${person.name} to be told ada speaks`, async () => (await person.dominantSpeaker())?.id === adaId, 30000);
    }

    // Ada falls silent as Bob starts: every page hears of Bob, within about a second.
    await sleep(2000);
    const swappedAt = Date.now();
    await Promise.all([ada.mute('audio', true), bob.mute('audio', false)]);
    const latencies = [];
    for (const person of [ada, cyd]) {
      const told = await waitFor(`${person.name} to be told bob speaks`, async () => {
        const last = await person.dominantSpeaker();
        return last?.id === bobId && last;
      }, 15000, 50);
      latencies.push(told.at - swappedAt);
      assert.deepEqual(told.previous.slice(0, 1), [adaId], 'ada spoke before');
    }
    console.log(`speaker switch: muting ada and unmuting bob -> DominantSpeakerEndpointChangeEvent at ada ${latencies[0]} ms, at cyd ${latencies[1]} ms`);
    assert.ok(Math.max(...latencies) < 3000, `switch latencies ${latencies} ms`);

    // Cyd wants one video: she decodes Bob's, the speaker's, only.
    await cyd.page.evaluate(() => window.tutti.conference.setReceiverConstraints({
      lastN: 1,
      selectedEndpoints: [],
      onStageEndpoints: [],
      defaultConstraints: { maxHeight: 360 },
      constraints: {},
    }));
    const bobAtCyd = await cyd.videoSsrcsFrom('bob');
    await waitFor('cyd to decode bob only', async () => {
      const decoding = await decodingSsrcs(cyd);
      return decoding.length === 1 && bobAtCyd.includes(decoding[0]);
    }, 20000);

    // Bob puts Ada on stage: her camera sends its upper encodings.
    const stage = (id) => ({
      lastN: -1,
      selectedEndpoints: [],
      onStageEndpoints: id ? [id] : [],
      defaultConstraints: { maxHeight: 180 },
      constraints: id ? { [id]: { maxHeight: 720 } } : {},
    });
    await bob.page.evaluate((c) => window.tutti.conference.setReceiverConstraints(c), stage(adaId));
    const onStage = await waitFor('ada to send two or more encodings', async () => {
      const active = await activeEncodings(ada);
      return active.length >= 2 && active;
    }, 60000);
    const stageKbps = await ada.videoSendKbps(4000);

    // Nobody wants more than 180 of her (Cyd has her beyond her last-N): the upper encodings
    // stop within 5 s.
    await bob.page.evaluate((c) => window.tutti.conference.setReceiverConstraints(c), stage(null));
    const offStageAt = Date.now();
    const thumbnail = await waitFor('ada to send one encoding', async () => {
      const active = await activeEncodings(ada);
      return active.length === 1 && active;
    }, 10000, 0);
    const stoppedMs = Date.now() - offStageAt;
    assert.ok(stoppedMs <= 5000, `upper encodings stopped after ${stoppedMs} ms`);
    const thumbnailKbps = await ada.videoSendKbps(4000);
    console.log(`ada on stage: encodings ${onStage} at ${stageKbps.toFixed(0)} kbit/s; thumbnails only: `
      + `${thumbnail} after ${stoppedMs} ms, at ${thumbnailKbps.toFixed(0)} kbit/s `
      + `(${(stageKbps - thumbnailKbps).toFixed(0)} kbit/s saved)`);
    assert.ok(thumbnailKbps < stageKbps, `${thumbnailKbps} kbit/s with thumbnails, ${stageKbps} on stage`);

    // On stage again: they come back.
    await bob.page.evaluate((c) => window.tutti.conference.setReceiverConstraints(c), stage(adaId));
    await waitFor('ada to send her upper encodings again', async () => (await activeEncodings(ada)).length >= 2, 30000, 0);
  });
});
