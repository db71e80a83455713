// The bridge stalls until the browsers' ICE gives up. lib-jitsi-meet then asks the focus for a
// new session the way it does by default — session-terminate with
// <bridge-session restart='true'>, because the focus's presence says support-terminate-restart.
// The bridge stays stalled for 3 s after that request, longer than the focus's keepalive takes to
// fail the bridge's connection (1.5 s), so the bridge calls the request causes fail and the focus
// must make them again once the bridge is back. (Resumed at once, whether those calls failed or
// were answered late depended on how fast the test saw the request: a race, which CI lost.) Then
// the participants that asked are on new sessions and everyone decodes everyone.
import { test } from 'node:test';
import { waitFor, withWorld } from './harness.mjs';

const jingleSid = (participant) => participant.page.evaluate(() => window.tutti.conference.jvbJingleSession?.sid);
const iceState = (participant) => participant.page.evaluate(() => window.tutti.conference.jvbJingleSession?.getIceConnectionState());
const restartRequests = (world) => (world.log('focus').match(/terminated by the participant.*restart.*true/g) ?? []).length;

test('an ICE failure gets new sessions from the focus', { timeout: 240000 }, async () => {
  await withWorld('ice-restart', async (world) => {
    const ada = await world.join('stall', 'ada');
    const bob = await world.join('stall', 'bob');
    const everyone = [ada, bob];
    await Promise.all(everyone.map((p) => p.waitForDecodedVideo(1)));
    const before = await Promise.all(everyone.map(jingleSid));

    world.pause('bridge');
    try {
      await waitFor('a browser to ask the focus for a restart', async () => restartRequests(world) >= 1, 90000, 200);
      await new Promise((resolve) => setTimeout(resolve, 3000));
    } finally {
      world.resume('bridge');
    }

    await waitFor('everyone connected again, on new sessions where they asked for one', async () => {
      const sids = await Promise.all(everyone.map(jingleSid));
      const states = await Promise.all(everyone.map(iceState));
      const renewed = sids.filter((sid, i) => sid && sid !== before[i]).length;
      return states.every((s) => s === 'connected') && renewed >= 1 && renewed === restartRequests(world);
    }, 40000);
    for (const participant of everyone) {
      await waitFor(`${participant.name}'s page to clear the interruption notice`, async () => (await participant.shownError()) === null, 10000);
    }
    await Promise.all(everyone.map((p) => p.waitForDecodedVideo(1)));
    await Promise.all(everyone.map((p) => p.waitForAudio(1)));
    await waitFor('the bridge to hold only the live endpoints', async () => (await world.bridgeMetric('tutti_bridge_endpoints')) === 2, 10000);
    const failed = (world.log('focus').match(/allocation failed/g) ?? []).length;
    console.log(`restart requests: ${restartRequests(world)}; allocations failed while the bridge was stalled, then retried: ${failed}`);
  });
});
