// Congestion control works through the bridge: with three participants, each sender's video
// bitrate climbs above 500 kbit/s within 20 s on the bridge's transport-cc feedback alone
// (nothing forces a bitrate), while the bridge's feedback counter rises. The cameras show noise
// so that the encoders use the bandwidth they are given (see writeNoiseVideo).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withWorld } from './harness.mjs';

const FEEDBACK = 'tutti_bridge_transport_cc_feedback_sent_total';

test('senders ramp up above 500 kbit/s on the bridge\'s transport-cc feedback', { timeout: 180000 }, async () => {
  await withWorld('bandwidth', async (world) => {
    const people = [];
    for (const name of ['ada', 'bob', 'cyd']) {
      people.push(await world.join('ramp', name));
    }
    const connectedAt = Date.now();
    const feedbackBefore = await world.bridgeMetric(FEEDBACK);
    const peak = new Map(people.map((p) => [p.name, 0]));
    while (Date.now() - connectedAt < 20000 && [...peak.values()].some((kbps) => kbps <= 500)) {
      const rates = await Promise.all(people.map((p) => p.videoSendKbps(2000)));
      people.forEach((p, i) => peak.set(p.name, Math.max(peak.get(p.name), rates[i])));
    }
    const feedbackAfter = await world.bridgeMetric(FEEDBACK);
    const elapsedS = (Date.now() - connectedAt) / 1000;
    console.log(`peak video send rates (kbit/s): ${JSON.stringify(Object.fromEntries(peak))}; `
      + `transport-cc feedback sent: ${feedbackBefore} -> ${feedbackAfter} in ${elapsedS.toFixed(1)} s`);
    for (const [name, kbps] of peak) {
      assert.ok(kbps > 500, `${name} sends ${kbps.toFixed(0)} kbit/s of video at best, not above 500`);
    }
    // The bridge sends each sender feedback every 50 ms; under load, at least a quarter of that.
    const perSenderPerSecond = (feedbackAfter - feedbackBefore) / elapsedS / people.length;
    assert.ok(
      perSenderPerSecond >= 5,
      `the bridge sent ${perSenderPerSecond.toFixed(1)} transport-cc feedback packets per sender per second`,
    );
    // No bitrate was forced: the answers carry no x-google bitrate hints.
    for (const person of people) {
      const { localSdp } = await person.stats();
      assert.doesNotMatch(localSdp, /x-google-(min|max|start)-bitrate/);
    }
  }, { camera: 'noise' });
});
