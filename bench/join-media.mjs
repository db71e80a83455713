// Join → media for the two kinds of client (docs/benchmarks.md, Join → media): two
// lib-jitsi-meet pages sit in a room; then, round after round, a standards client
// (tests/browser/standard-client.js: plain XEP Jingle, routed by MID) and a lib-jitsi-meet page
// each open a fresh page, join, and are timed from opening the page to decoding both pages'
// video and hearing both, then leave. Both kinds are timed the same way in the same run, so the
// ratio is what to read on a shared machine. One JSON line per join, then one with the medians.
// Run by bench/join-media (in a network namespace of its own, like the browser tests).
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor, withWorld } from '../tests/browser/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const rounds = Number(process.env.TUTTI_JOIN_MEDIA_ROUNDS ?? 5);
const ROOM = 'joins';

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Opens a page with the standards client and joins; resolves once it decodes and hears both. */
async function standardsJoin(world, nick) {
  const started = Date.now();
  const context = await world.browser.newContext();
  const page = await context.newPage();
  await page.goto(world.stack.url);
  await page.addScriptTag({ path: join(here, '..', 'tests', 'browser', 'standard-client.js') });
  await page.evaluate(([room, name]) => window.standardClient.join(room, name, { sources: false }),
    [`${ROOM}@${await page.evaluate(() => window.TUTTI_CONFIG.muc)}`, nick]);
  await waitFor(`${nick} to decode two videos and hear two`, async () => {
    const streams = Object.values(await page.evaluate(() => window.standardClient.client.received()));
    const videos = streams.filter((s) => s.kind === 'video' && s.framesDecoded > 0).length;
    const audios = streams.filter((s) => s.kind === 'audio' && s.audioEnergy > 0).length;
    return videos >= 2 && audios >= 2;
  }, 60000, 50);
  return { ms: Date.now() - started, leave: () => context.close() };
}

/** Opens a lib-jitsi-meet page that joins; resolves once it decodes and hears both. */
async function jitsiJoin(world, nick) {
  const started = Date.now();
  const participant = await world.join(ROOM, nick, { waitFor: null });
  await waitFor(`${nick} to decode two videos and hear two`, async () => {
    const stats = await participant.stats().catch(() => null);
    if (!stats) {
      return false;
    }
    const videos = stats.inboundVideo.filter((v) => v.framesDecoded > 0 && v.frameWidth > 0).length;
    const audios = stats.inboundAudio.filter((a) => a.audioLevel > 0 || a.totalAudioEnergy > 0).length;
    return videos >= 2 && audios >= 2;
  }, 60000, 50);
  return { ms: Date.now() - started, leave: () => participant.context.close() };
}

test('join → media, a standards client against a lib-jitsi-meet page', { timeout: 60000 + rounds * 90000 }, async () => {
  await withWorld('join-media', async (world) => {
    const ada = await world.join(ROOM, 'ada');
    const bob = await world.join(ROOM, 'bob');
    await ada.waitForDecodedVideo(1);
    await bob.waitForDecodedVideo(1);
    const times = { standards: [], jitsi: [] };
    for (let round = 0; round < rounds; round += 1) {
      for (const [kind, joinAs] of [['standards', standardsJoin], ['jitsi', jitsiJoin]]) {
        const joined = await joinAs(world, `${kind}${round}`);
        times[kind].push(joined.ms);
        console.log(JSON.stringify({ bench: 'join_media', round, client: kind, join_to_media_ms: joined.ms }));
        await joined.leave();
        // The next one joins a room of two again.
        await ada.waitForTiles(['bob']);
        await bob.waitForTiles(['ada']);
      }
    }
    const standards = median(times.standards);
    const jitsi = median(times.jitsi);
    console.log(JSON.stringify({
      bench: 'join_media',
      rounds,
      standards_median_ms: standards,
      standards_max_ms: Math.max(...times.standards),
      jitsi_median_ms: jitsi,
      jitsi_max_ms: Math.max(...times.jitsi),
      standards_to_jitsi: Math.round((standards / jitsi) * 1000) / 1000,
    }));
  });
});
