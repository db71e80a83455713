// A bridge told to stop (SIGTERM) drains, on a pool of two in two regions: a conference that
// starts while it drains, from the draining bridge's region, goes to the other bridge; the call
// it holds goes on until its drain timeout, then the bridge says it is shutting down, the focus
// moves the call (session-terminate, then a new session-initiate on the other bridge), every
// page decodes video again within 10 s of the timeout, nobody leaves the room, and the drained
// bridge's process exits.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sumMetric, waitFor, withWorld } from './harness.mjs';

const BOUND_MS = 10000;
const DRAIN_TIMEOUT_S = 5;

test('a draining bridge takes no new conference and its call moves at the drain timeout', { timeout: 180000 }, async () => {
  const drain = { TUTTI_BRIDGE_DRAIN_TIMEOUT_SECS: String(DRAIN_TIMEOUT_S) };
  const bridgeEnvs = [{ ...drain, TUTTI_BRIDGE_REGION: 'west' }, { ...drain, TUTTI_BRIDGE_REGION: 'east' }];
  await withWorld('drain', async (world) => {
    const port = (index) => Number(world.stack.bridges[index].media.split(':').pop());
    const names = ['ada', 'bob', 'cyd'];
    const people = [];
    for (const name of names) {
      people.push(await world.join('draining', name, { region: 'east' }));
    }
    for (const person of people) {
      await person.waitForDecodedVideo(2);
      assert.equal(await person.bridgePort(), port(1), `${person.name} on the bridge in its region`);
      await person.page.evaluate(() => {
        window.beforeMove = window.tutti.conference.getActivePeerConnection();
      });
    }
    const told = Date.now();
    const exited = world.terminate('bridge1');
    const timeout = told + DRAIN_TIMEOUT_S * 1000;
    const deadline = timeout + BOUND_MS;
    // Each page is watched from now on, side by side with what follows.
    const moves = people.map(async (person) => {
      await waitFor(`${person.name} on a new session`, () => person.page.evaluate(() => {
        const pc = window.tutti.conference.getActivePeerConnection();
        return Boolean(pc) && pc !== window.beforeMove;
      }), Math.max(1, deadline - Date.now()), 100);
      const moved = Date.now() - timeout;
      await person.waitForDecodedVideo(2, Math.max(1, deadline - Date.now()));
      return { name: person.name, moved, decoding: Date.now() - timeout };
    });
    // Their failures are reported where they are awaited, below.
    moves.forEach((move) => move.catch(() => {}));

    // A new conference from the same region meanwhile lands on the other region's bridge.
    const dee = await world.join('later', 'dee', { region: 'east' });
    assert.equal(await dee.bridgePort(), port(0), 'the new conference is not on the draining bridge');

    const results = await Promise.all(moves);
    for (const { name, moved, decoding } of results) {
      console.log(`drain: ${name} on a new session ${moved} ms after the drain timeout, decoding ${decoding} ms after it`);
    }
    for (const person of people) {
      assert.equal(await person.bridgePort(), port(0), `${person.name} moved to the other bridge`);
    }
    const took = Math.max(...results.map((r) => r.decoding));
    console.log(`drain: every page decodes video again ${took} ms after the drain timeout`);
    assert.ok(took <= BOUND_MS, `${took} ms`);
    assert.equal(await exited, 0, 'the drained bridge exits cleanly');
    assert.equal(sumMetric(await world.bridgeMetrics(0), 'tutti_bridge_endpoints'), 4);
    for (const person of people) {
      assert.equal(await person.state(), 'connected', `${person.name} is still in the call`);
      const removed = (await person.events('tile-removed')).filter((e) => e.at >= told);
      assert.deepEqual(removed, [], `${person.name} saw nobody leave`);
      await person.waitForTiles(names.filter((n) => n !== person.name));
    }
  }, { bridges: 2, bridgeEnvs });
});
