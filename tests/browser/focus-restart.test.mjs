// A call survives its focus: the focus process is killed (kill -9) and a new one started.
// lib-jitsi-meet stays in the room while media goes on through the bridge; the new focus finds
// the call's conference on the bridge, joins the room, ends each page's old session
// (session-terminate) and offers a new one, which lib-jitsi-meet takes as a move. Every page
// decodes video again within 10 s of the kill, nobody leaves the room, the bridge then holds
// exactly the three participants' endpoints, and someone leaving afterwards is gone from the
// others' pages (the focus's leaving once broke that: docs/focus.md, Focus restart).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sumMetric, waitFor, withWorld } from './harness.mjs';

const BOUND_MS = 10000;

test('a call goes on when its focus is killed and started again', { timeout: 180000 }, async () => {
  await withWorld('focus-restart', async (world) => {
    const names = ['ada', 'bob', 'cyd'];
    const people = [];
    for (const name of names) {
      people.push(await world.join('restart', name));
    }
    for (const person of people) {
      await person.waitForDecodedVideo(2);
      await person.page.evaluate(() => {
        window.beforeRestart = window.tutti.conference.getActivePeerConnection();
      });
    }
    const started = Date.now();
    await world.kill('focus');
    await world.restartFocus();
    const focusUp = Date.now() - started;
    for (const person of people) {
      const left = () => Math.max(1, BOUND_MS - (Date.now() - started));
      await waitFor(`${person.name} on a new session`, () => person.page.evaluate(() => {
        const pc = window.tutti.conference.getActivePeerConnection();
        return Boolean(pc) && pc !== window.beforeRestart;
      }), left(), 100);
      await person.waitForDecodedVideo(2, left());
    }
    const took = Date.now() - started;
    console.log(`focus restart: every page decodes video again ${took} ms after the kill (the new focus was up after ${focusUp} ms)`);
    assert.ok(took <= BOUND_MS, `${took} ms`);
    const metrics = await world.bridgeMetrics();
    assert.equal(sumMetric(metrics, 'tutti_bridge_endpoints'), 3, 'one endpoint per participant');
    assert.equal(sumMetric(metrics, 'tutti_bridge_conferences'), 1);
    for (const person of people) {
      await person.waitForState('connected', 5000);
      const removed = (await person.events('tile-removed')).filter((e) => e.at >= started);
      assert.deepEqual(removed, [], `${person.name} saw nobody leave`);
      await person.waitForTiles(names.filter((n) => n !== person.name));
    }
    // The call goes on as before: someone who leaves now is gone from the others' pages.
    const [ada, bob, cyd] = people;
    await cyd.leave();
    await ada.waitForTiles(['bob'], 3000);
    await bob.waitForTiles(['ada'], 3000);
  });
});
