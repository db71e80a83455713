// Three lib-jitsi-meet participants in one room: everyone decodes everyone's video and hears
// everyone's audio through the bridge, while sending simulcast (lib-jitsi-meet's default).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor, withWorld } from './harness.mjs';

test('three participants decode each other through the bridge', { timeout: 180000 }, async () => {
  await withWorld('three', async (world) => {
    const names = ['ada', 'bob', 'cyd'];
    const people = [];
    for (const name of names) {
      people.push(await world.join('trio', name));
    }
    for (const person of people) {
      await person.waitForTiles(names.filter((n) => n !== person.name));
    }
    for (const person of people) {
      await person.waitForDecodedVideo(2);
      await person.waitForAudio(2);
    }
    // The fake microphones beep: every remote tile lights up as speaking at some point.
    for (const person of people) {
      const others = names.filter((n) => n !== person.name);
      await waitFor(`${person.name} to show ${others} speaking`, async () => {
        const speakers = new Set((await person.events('speaking')).map((e) => e.name));
        return others.every((n) => speakers.has(n));
      });
    }
    for (const person of people) {
      const { localSdp } = await person.stats();
      assert.match(localSdp, /a=ssrc-group:SIM \d+ \d+ \d+/, `${person.name} sends simulcast`);
    }
    // The bridge forwards one layer per sender: each receiver decodes one stream per sender.
    for (const person of people) {
      assert.equal((await person.decodedVideo()).length, 2, `${person.name} decodes one stream per sender`);
    }
  });
});
