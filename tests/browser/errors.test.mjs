// Failures are shown on the page in words: the focus not answering, and no bridge to set up
// media on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor, withWorld } from './harness.mjs';

test('the page says so when the focus does not answer', { timeout: 120000 }, async () => {
  await withWorld('nofocus', async (world) => {
    await world.kill('focus');
    const ada = await world.join('quiet', 'ada', { waitFor: null });
    const shown = await waitFor('an error on the page', () => ada.shownError(), 20000);
    assert.match(shown, /focus did not answer/);
    assert.equal(await ada.state(), 'failed');
  });
});

test('the page says so when no bridge is available', { timeout: 120000 }, async () => {
  await withWorld('nobridge', async (world) => {
    await world.kill('bridge');
    const ada = await world.join('dark', 'ada', { waitFor: null });
    // The focus cannot allocate an endpoint: its presence says no bridge is available.
    const shown = await waitFor('an error on the page', () => ada.shownError(), 30000);
    assert.match(shown, /no media bridge is available/);
    assert.equal(await ada.state(), 'failed');
  });
});

test('the page recovers once the bridge answers again', { timeout: 120000 }, async () => {
  await withWorld('bridgeback', async (world) => {
    world.pause('bridge');
    const ada = await world.join('later', 'ada', { waitFor: null });
    const shown = await waitFor('an error on the page', () => ada.shownError(), 30000);
    assert.match(shown, /no media bridge is available/);
    // The focus keeps asking the bridge; once it answers, ada gets her session and media.
    world.resume('bridge');
    await waitFor('ada to connect her media', async () => (await ada.state()) === 'connected', 30000);
    assert.equal(await ada.shownError(), null);
  });
});
