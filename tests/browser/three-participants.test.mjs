// Three lib-jitsi-meet participants in one room: everyone decodes everyone's video and hears
// everyone's audio through the bridge, while sending simulcast (lib-jitsi-meet's default); their
// bridge channels carry messages between them, and no browser keeps renegotiating.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sleep, waitFor, withWorld } from './harness.mjs';

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

    // Every page opened the bridge channel the offer named; what one sends reaches the others
    // marked with its sender's id.
    for (const person of people) {
      await waitFor(`${person.name}'s bridge channel to open`, async () => (await person.events('bridge-channel-open')).length > 0);
    }
    const [ada, ...others] = people;
    const adaId = await ada.page.evaluate(() => window.tutti.conference.myUserId());
    await ada.page.evaluate(() => window.tutti.conference.sendEndpointMessage('', { wave: 'hello' }));
    for (const person of others) {
      await waitFor(`${person.name} to get ada's message over the bridge channel`, async () => {
        const messages = await person.events('endpoint-message');
        return messages.some((m) => m.from === adaId && m.payload?.wave === 'hello');
      }, 5000);
    }

    // Nobody joins or leaves now, so signalling is quiet. (Offered no bridge channel,
    // lib-jitsi-meet opens an SCTP one the offer has no m-line for, and Chromium then asks for a
    // new answer after every answer, without end.)
    for (const person of people) {
      await person.page.evaluate(() => {
        window.signallingChanges = 0;
        const pc = window.tutti.conference.getActivePeerConnection().peerconnection;
        pc.addEventListener('signalingstatechange', () => { window.signallingChanges += 1; });
      });
    }
    await sleep(3000);
    for (const person of people) {
      const changes = await person.page.evaluate(() => window.signallingChanges);
      assert.ok(changes <= 2, `${person.name}'s peer connection changed signalling state ${changes} times in 3 s`);
    }
  });
});
