// A call on a pool of two bridges moves when its bridge is killed (kill -9) or frozen
// (SIGSTOP): the focus marks the bridge failed and re-invites everyone on the other one
// (session-terminate, then a new session-initiate), which lib-jitsi-meet takes as a new
// session; every page decodes video again within 10 s, and nobody leaves the room.
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

for (const fault of ['kill', 'pause']) {
  test(`a call moves to the other bridge when its bridge is ${fault === 'kill' ? 'killed' : 'frozen'}`, { timeout: 180000 }, async () => {
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
      } else {
        world.pause(name);
      }
      for (const person of people) {
        const left = () => Math.max(1, BOUND_MS - (Date.now() - started));
        await waitFor(`${person.name} on a new session`, () => person.page.evaluate(() => {
          const pc = window.tutti.conference.getActivePeerConnection();
          return Boolean(pc) && pc !== window.beforeMove;
        }), left(), 100);
        await person.waitForDecodedVideo(2, left());
      }
      const took = Date.now() - started;
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
      }
    }, { bridges: 2 });
  });
}
