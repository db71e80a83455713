// A fourth participant joins a running three-way call: it sees and decodes everyone, and
// everyone sees and decodes it.
import { test } from 'node:test';
import { withWorld } from './harness.mjs';

test('a late fourth participant sees everyone and everyone sees it', { timeout: 180000 }, async () => {
  await withWorld('late', async (world) => {
    const names = ['ada', 'bob', 'cyd'];
    const early = [];
    for (const name of names) {
      early.push(await world.join('late', name));
    }
    await early[0].waitForDecodedVideo(2);
    const dan = await world.join('late', 'dan');
    await dan.waitForTiles(names);
    await dan.waitForDecodedVideo(3);
    await dan.waitForAudio(3);
    for (const person of early) {
      await person.waitForTiles([...names.filter((n) => n !== person.name), 'dan']);
      await person.waitForDecodedVideo(3);
    }
  });
});
