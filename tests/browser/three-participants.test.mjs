// Three lib-jitsi-meet participants in one room: everyone decodes everyone's video and hears
// everyone's audio through the bridge; simulcast senders; congestion control ramps up.
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
      const others = names.filter((n) => n !== person.name).sort();
      await waitFor(`${person.name} to show tiles for ${others}`, async () => {
        const tiles = (await person.remoteTiles()).sort();
        return JSON.stringify(tiles) === JSON.stringify(others);
      });
    }
    // Every receiver decodes two video streams with real frames, and receives two audio streams
    // with sound in them.
    for (const person of people) {
      const first = await person.stats();
      await waitFor(`${person.name} to decode two video streams`, async () => {
        const stats = await person.stats();
        const decoding = stats.inboundVideo.filter((v) => v.framesDecoded > 0 && v.frameWidth > 0);
        return decoding.length >= 2 && stats;
      });
      await waitFor(`${person.name}'s decoded frame counts to rise`, async () => {
        const now = await person.stats();
        const risen = now.inboundVideo.filter((v) => {
          const before = first.inboundVideo.find((b) => b.ssrc === v.ssrc);
          return v.framesDecoded > (before ? before.framesDecoded : 0) + 10;
        });
        return risen.length >= 2;
      });
      await waitFor(`${person.name} to hear two audio streams`, async () => {
        const stats = await person.stats();
        const hearing = stats.inboundAudio.filter(
          (a) => a.packetsReceived > 50 && (a.audioLevel > 0 || a.totalAudioEnergy > 0),
        );
        return hearing.length >= 2;
      });
    }
    // lib-jitsi-meet sends simulcast by default: its answer carries a SIM group.
    for (const person of people) {
      const { localSdp } = await person.stats();
      assert.match(localSdp, /a=ssrc-group:SIM \d+ \d+ \d+/, `${person.name} sends simulcast`);
    }
  });
});
