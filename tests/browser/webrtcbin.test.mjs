// A standards participant on an independent WebRTC stack, GStreamer's webrtcbin (Debian's 1.22;
// webrtcbin-client.py, XMPP and Jingle<->SDP by hand), in a room with two lib-jitsi-meet pages:
// it decodes each page's video and audio as streams of their own (one m-line each) and the pages
// decode its video and hear it; a third page's join and leave reach it as content-add and
// content-remove, and its decoding follows. libnice gathers no loopback candidates, so the namespace gets an address on
// an ifb device, and the bridge its media socket there (a socket bound to 127.0.0.1 reaches no
// other address).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { waitFor, withWorld } from './harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));

// The pages have the bridge assume 2.5 Mbit/s towards them: the subject here is signalling and
// media paths, not bandwidth estimation. On a starved machine (load 12-26 on 2 cores) Chromium's
// REMB fell to 290-320 kbit/s, and the allocator, rightly, had no room for the webrtcbin client's
// single 265 kbit/s layer beside the other page's video and the audio streams (/debug/receivers:
// its target none), so a page never decoded it: 4 of 5 runs failed so, 2026-12-06.
// They capture 180 lines at 15 frames/s: nothing here needs more on a loaded 2-core machine.
const PAGE = { query: { assumed: '2500000' }, capture: { resolution: '180', fps: '15' } };

function run(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')}: ${result.stderr}`);
  }
}

test('a webrtcbin participant and lib-jitsi-meet pages see and hear each other', { timeout: 180000 }, async () => {
  run('ip', ['link', 'add', 'tutti-gst0', 'type', 'ifb']);
  run('ip', ['addr', 'add', '10.98.0.1/24', 'dev', 'tutti-gst0']);
  run('ip', ['link', 'set', 'tutti-gst0', 'up']);
  await withWorld('webrtcbin', async (world) => {
    const ada = await world.join('gst', 'ada', PAGE);
    const bob = await world.join('gst', 'bob', PAGE);
    const started = Date.now();
    const client = spawn('/usr/bin/python3', [join(here, 'webrtcbin-client.py'), world.stack.xmpp,
      world.stack.settings.guestDomain, `gst@${world.stack.settings.muc}`, 'gus'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const stderr = [];
    client.stderr.on('data', (chunk) => stderr.push(String(chunk)));
    let last = null;
    createInterface({ input: client.stdout }).on('line', (line) => { last = JSON.parse(line); });
    try {
      const decoded = await waitFor('gus to decode both pages\' video and audio', async () => {
        const streams = Object.values(last?.decoded ?? {});
        const video = streams.filter((s) => s.kind === 'video' && s.buffers > 0).length;
        const audio = streams.filter((s) => s.kind === 'audio' && s.buffers > 0).length;
        return video === 2 && audio === 2 && last.decoded;
      }, 30000);
      console.log(`gus (webrtcbin) decodes both videos ${Date.now() - started} ms after starting: ${JSON.stringify(decoded)}`);
      // The pages decode its video and hear its tone (as they do each other's).
      for (const page of [ada, bob]) {
        await page.waitForDecodedVideo(2, 30000);
        await page.waitForAudio(2);
      }

      // A third page joins and leaves: content-add and content-remove reach it, and its
      // decoding follows (the third page's video decoded on a new m-line).
      const cyd = await world.join('gst', 'cyd', PAGE);
      const withCyd = await waitFor('gus to decode cyd\'s video too', async () => {
        const streams = Object.entries(last?.decoded ?? {});
        return streams.filter(([, s]) => s.kind === 'video' && s.buffers > 0).length === 3 && last;
      }, 30000);
      const added = withCyd.jingles.find((j) => j.action === 'content-add');
      assert.deepEqual(added.contents.map((name) => name.split('-')[0]).sort(), ['audio', 'video']);
      const before = withCyd.decoded;
      await cyd.page.close();
      const removed = await waitFor('a content-remove to gus', async () => last.jingles.find((j) => j.action === 'content-remove'), 30000);
      assert.deepEqual([...removed.contents].sort(), [...added.contents].sort());
      // ada's and bob's videos go on decoding.
      await waitFor('gus to go on decoding ada\'s and bob\'s video', async () => ['video-2', 'video-4']
        .every((mid) => last.decoded[mid].buffers > before[mid].buffers + 5), 20000);
      console.log(`content-add ${added.contents}, content-remove ${removed.contents}: ${JSON.stringify(last.decoded)}`);
    } catch (error) {
      console.error(stderr.join(''));
      for (const page of [ada, bob]) {
        console.error(`${page.name} received: ${JSON.stringify(await page.inboundVideo())}`);
      }
      console.error(`bridge receivers: ${JSON.stringify(await world.receivers())}`);
      throw error;
    } finally {
      client.kill();
    }
  }, { bridgeEnvs: [{ TUTTI_BRIDGE_MEDIA_ADDRESS: '10.98.0.1:10000' }] });
});
