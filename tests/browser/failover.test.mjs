// A call on a pool of two bridges moves when its bridge is killed (kill -9), frozen (SIGSTOP)
// or cut off (its link set down: each bridge a host of its own behind a veth pair): the focus
// marks the bridge failed and re-invites everyone on the other one (session-terminate, then a
// new session-initiate), which lib-jitsi-meet takes as a new session; every page decodes video
// again within 10 s, and nobody leaves the room.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sumMetric, waitFor, withWorld } from './harness.mjs';

const BOUND_MS = 10000;

/** The pool's index of the bridge that holds the call's three endpoints. */
async function bridgeOfTheCall(world) {
  const found = await waitFor('the call on one bridge', async () => {
    for (const index of [0, 1]) {
      if (sumMetric(await world.bridgeMetrics(index), 'tutti_bridge_endpoints') === 3) {
        return { index };
      }
    }
    return null;
  });
  return found.index;
}

const DONE_TO_THE_BRIDGE = { kill: 'killed', pause: 'frozen', link: 'cut off' };

for (const fault of ['kill', 'pause', 'link']) {
  test(`a call moves to the other bridge when its bridge is ${DONE_TO_THE_BRIDGE[fault]}`, { timeout: 180000 }, async () => {
    await withWorld(`failover-${fault}`, async (world) => {
      const names = ['ada', 'bob', 'cyd'];
      const people = [];
      for (const name of names) {
        people.push(await world.join('moving', name));
      }
      for (const person of people) {
        await person.waitForDecodedVideo(2);
        await person.page.evaluate(() => {
          window.beforeMove = window.tutti.conference.getActivePeerConnection();
        });
      }
      const index = await bridgeOfTheCall(world);
      const name = index === 0 ? 'bridge' : `bridge${index}`;
      const started = Date.now();
      if (fault === 'kill') {
        await world.kill(name);
      } else if (fault === 'pause') {
        world.pause(name);
      } else {
        world.setLink(index, false);
      }
      // The pages are watched side by side: the time is that of the last one to decode.
      const left = () => Math.max(1, BOUND_MS - (Date.now() - started));
      const decoding = await Promise.all(people.map(async (person) => {
        await waitFor(`${person.name} on a new session`, () => person.page.evaluate(() => {
          const pc = window.tutti.conference.getActivePeerConnection();
          return Boolean(pc) && pc !== window.beforeMove;
        }), left(), 100);
        await person.waitForDecodedVideo(2, left());
        return Date.now() - started;
      }));
      const took = Math.max(...decoding);
      console.log(`${fault}: every page decodes video again ${took} ms after the fault`);
      assert.ok(took <= BOUND_MS, `${took} ms`);
      assert.equal(sumMetric(await world.bridgeMetrics(1 - index), 'tutti_bridge_endpoints'), 3);
      for (const person of people) {
        assert.equal(await person.state(), 'connected', `${person.name} is still in the call`);
        const removed = (await person.events('tile-removed')).filter((e) => e.at >= started);
        assert.deepEqual(removed, [], `${person.name} saw nobody leave`);
        await person.waitForTiles(names.filter((n) => n !== person.name));
      }
      if (fault === 'pause') {
        world.resume(name);
      } else if (fault === 'link') {
        world.setLink(index, true);
      }
    }, { bridges: 2, linked: fault === 'link' });
  });
}
