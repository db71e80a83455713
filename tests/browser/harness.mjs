// Browser test harness: the real stack (scripts/stack.mjs) plus lib-jitsi-meet participants in
// headless Debian Chromium driven by playwright-core. The runner (tests/browser/run) starts each
// test file in its own network namespace with only `lo` up.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startStack } from '../../scripts/stack.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
export const artifacts = join(here, 'artifacts');

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
  // Without it Chromium offers no 127.0.0.1 candidates, and loopback is all the namespace has.
  '--allow-loopback-in-peer-connection',
];

export function sleep(ms) {
  return new Promise((done) => setTimeout(done, ms));
}

/**
 * The heights of `person`'s camera encodings that encoded frames over the last second, lowest
 * first.
 */
export async function activeEncodings(person) {
  const before = await person.stats();
  await sleep(1000);
  const after = await person.stats();
  return after.outboundVideo
    .filter((e) => {
      const then = before.outboundVideo.find((b) => b.ssrc === e.ssrc);
      return then && e.framesEncoded > then.framesEncoded && e.frameHeight > 0;
    })
    .map((e) => e.frameHeight)
    .sort((a, b) => a - b);
}

/** Polls `probe` until it returns a truthy value; throws with `what` and the last value. */
export async function waitFor(what, probe, timeoutMs = 20000, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) {
      return last;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    }
    await sleep(intervalMs);
  }
}

/**
 * Opens the demo page at `url` in a new context of `browser` as `displayName` in `room` and
 * waits until its media is connected (or reaches `waitFor`); `capture` ({ resolution, fps })
 * sets its camera, `query` adds other parameters to the page's address; `contextOptions` go to
 * the context; the participant is added to `joined`.
 */
export async function joinPage(browser, url, room, displayName, {
  waitFor: state = 'connected', capture = {}, query = {}, contextOptions = {}, joined = [],
} = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const participant = new Participant(displayName, context, page);
  joined.push(participant);
  const search = new URLSearchParams({ room, name: displayName, autojoin: '1', ...capture, ...query });
  await page.goto(`${url}?${search}`);
  if (state) {
    await participant.waitForState(state);
  }
  return participant;
}

/**
 * One test's world: the stack, one Chromium, and the participants opened in it. `run` gets the
 * world; afterwards everything is stopped, and on failure every page is screenshotted and its
 * console printed, with the tails of the stack's logs. `server` 'ejabberd' runs the stack on
 * ejabberd instead of Prosody. With `hosts` (a number), that many hosts of their own, each
 * behind a link whose rate the test can cap (startStack's `hosts`); a participant joins from
 * one with `world.join(…, { host })`. `focusEnv` and `bridgeEnvs[i]` add settings for the focus
 * and for bridge i.
 */
export async function withWorld(name, run, {
  camera = 'default', bridges = 1, bridgeEnvs = [], focusEnv = {}, linked = false, server = 'prosody', hosts = 0,
} = {}) {
  if (!process.env.TUTTI_TEST_IN_NETNS) {
    throw new Error('browser tests run inside their own network namespace: use tests/browser/run');
  }
  const runDir = join(tmpdir(), `tutti-browser-${name}-${process.pid}`);
  const stack = await startStack({
    runDir,
    logs: 'files',
    bridges,
    bridgeEnvs,
    focusEnv,
    linked,
    server,
    hosts,
    binDir: process.env.TUTTI_BIN_DIR ?? join(root, 'target', 'debug'),
  });
  const args = [...CHROMIUM_ARGS];
  if (camera === 'noise' || camera === 'noise-540') {
    const height = camera === 'noise' ? 360 : 540;
    args.push(`--use-file-for-fake-video-capture=${writeNoiseVideo(runDir, height)}`);
  }
  /** A Chromium whose fake microphone plays `audioFile`. */
  const launch = (audioFile) => launchChromium([...args, `--use-file-for-fake-audio-capture=${audioFile}`]);
  const beeps = writeAudio(runDir, 'speech.wav', 'beeps');
  const browser = await launch(beeps);
  /** A Chromium (beeping) in host h's network namespace, which reaches the page off loopback. */
  const launchOnHost = (h) => {
    const host = stack.hosts[h];
    const wrapper = join(runDir, `chromium-host${h}`);
    const chromium = process.env.TUTTI_CHROMIUM ?? '/usr/bin/chromium';
    writeFileSync(wrapper, `#!/bin/sh\nexec nsenter --net=${host.netns} ${chromium} "$@"\n`, { mode: 0o755 });
    // getUserMedia wants a secure origin: localhost is one, the stack's link address is not.
    const origin = new URL(host.url).origin;
    return launchChromium([
      ...args, `--use-file-for-fake-audio-capture=${beeps}`, `--unsafely-treat-insecure-origin-as-secure=${origin}`,
    ], wrapper);
  };
  const world = new World(name, stack, browser, (participant, sound) => launch(writeAudio(runDir, `${participant}.wav`, sound)), launchOnHost);
  try {
    await run(world);
  } catch (error) {
    await world.report();
    throw error;
  } finally {
    for (const own of [browser, ...world.ownBrowsers]) {
      await own.close().catch(() => {});
    }
    await stack.stop();
  }
  // Retried: a server may still be closing files in it.
  rmSync(runDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}

/** Starts headless Chromium (TUTTI_CHROMIUM, or `executablePath`) with `args`. */
export function launchChromium(args, executablePath = process.env.TUTTI_CHROMIUM ?? '/usr/bin/chromium') {
  // Playwright mutes audio in headless mode; the tests listen to it.
  return chromium.launch({ executablePath, args, ignoreDefaultArgs: ['--mute-audio'] });
}

/**
 * A WAV file for the fake microphone (`file` in `dir`), looped by Chromium:
 * - 'beeps': a 400 Hz tone 400 ms out of every second. Chromium's built-in fake microphone
 *   beeps for 20 ms every 500 ms, and a page that polls audio levels (lib-jitsi-meet, every
 *   200 ms) can miss those beeps for many seconds; the tone makes every participant "speak" in
 *   every poll for 40 % of the time.
 * - 'voice': someone talking to a speaker detector: 250 ms syllables of a tone (300 to 500 Hz,
 *   varying loudness) with 50 ms between them, and 200 ms of pause every 1.4 s.
 * - 'silence': digital silence.
 */
export function writeAudio(dir, file, sound) {
  const rate = 48000;
  const seconds = sound === 'voice' ? 1.4 : 2;
  const samples = Math.round(rate * seconds);
  const data = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i += 1) {
    const t = i / rate;
    let value = 0;
    if (sound === 'beeps' && i % rate < rate * 0.4) {
      value = 12000 * Math.sin(2 * Math.PI * 400 * t);
    } else if (sound === 'voice' && t < 1.2 && t % 0.3 < 0.25) {
      const syllable = Math.floor(t / 0.3);
      const frequency = 300 + 50 * syllable;
      value = (8000 + 2000 * syllable) * Math.sin(2 * Math.PI * frequency * t);
    }
    data.writeInt16LE(Math.round(value), i * 2);
  }
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8);
  header.write('fmt ', 12);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  const path = join(dir, file);
  writeFileSync(path, Buffer.concat([header, data]));
  return path;
}

/**
 * A 30 fps Y4M clip of noise, `height` lines of 16:9, for the fake camera. Chromium's built-in
 * fake camera draws a simple pattern that VP8 codes in a few hundred kbit/s whatever the network
 * allows; noise makes the encoder use what congestion control gives it (and, from 540 lines up,
 * each simulcast layer what Chromium allots it).
 */
function writeNoiseVideo(dir, height) {
  const [width, frames] = [(height * 16) / 9, 30];
  const file = join(dir, 'noise.y4m');
  const luma = width * height;
  const chroma = luma / 4;
  const parts = [Buffer.from(`YUV4MPEG2 W${width} H${height} F30:1 Ip A1:1 C420jpeg\n`)];
  for (let frame = 0; frame < frames; frame += 1) {
    parts.push(Buffer.from('FRAME\n'), randomBytes(luma), Buffer.alloc(2 * chroma, 128));
  }
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

class World {
  constructor(name, stack, browser, launch, launchOnHost) {
    this.name = name;
    this.stack = stack;
    this.browser = browser;
    this.launch = launch;
    this.launchOnHost = launchOnHost;
    /** The Chromium of each host, once one of its participants joined. */
    this.hostBrowsers = new Map();
    /** Chromiums of participants that have a microphone of their own. */
    this.ownBrowsers = [];
    this.participants = [];
  }

  /**
   * Opens the demo page as `displayName` in `room` and waits until its media is connected;
   * `capture` ({ resolution, fps }) sets its camera, `region` where it says it is, and `query`
   * adds to the page's address (e.g. { receive: '180' }). With `audio` ('voice' or 'silence';
   * see writeAudio) the participant gets a Chromium of its own whose microphone plays that;
   * otherwise it shares the world's, whose microphone beeps. With `host` (withWorld's `hosts`)
   * it joins from that host, in the host's Chromium.
   */
  async join(room, displayName, { region, query = {}, audio, host, ...options } = {}) {
    let browser = this.browser;
    let { url } = this.stack;
    if (host !== undefined) {
      if (!this.hostBrowsers.has(host)) {
        const launched = await this.launchOnHost(host);
        this.hostBrowsers.set(host, launched);
        this.ownBrowsers.push(launched);
      }
      browser = this.hostBrowsers.get(host);
      url = this.stack.hosts[host].url;
    } else if (audio) {
      browser = await this.launch(displayName, audio);
      this.ownBrowsers.push(browser);
    }
    return joinPage(browser, url, room, displayName, {
      ...options, query: { ...query, ...(region ? { region } : {}) }, joined: this.participants,
    });
  }

  /** Stops one of the stack's processes ('focus', 'bridge' or 'prosody'), as a crash would. */
  async kill(name) {
    const child = this.stack.children[name];
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts the focus again after `kill('focus')`. */
  async restartFocus() {
    await this.stack.restartFocus();
  }

  /** SIGTERM to one of the stack's processes; resolves with its exit code once it exits. */
  terminate(name) {
    const child = this.stack.children[name];
    const exited = new Promise((done) => child.once('exit', (code) => done(code)));
    child.kill('SIGTERM');
    return exited;
  }

  /** Sets the link of the pool's bridge `index` down (a cut cable) or up (`withWorld`'s `linked`). */
  setLink(index, up) {
    this.stack.setLink(index, up);
  }

  /**
   * Cuts the path between the pool's bridges i and j only (`up` false; withWorld's `linked`):
   * the link a relay between them takes; each still reaches the focus and the pages.
   */
  setPath(i, j, up) {
    this.stack.setPath(i, j, up);
  }

  /**
   * Caps the rate towards host h (withWorld's `hosts`) at `kbps`, or lifts the cap (null); see
   * startStack's shape.
   */
  shape(h, kbps) {
    this.stack.shape(h, kbps);
  }

  /** What the link towards host h sent and dropped: { bytes, packets, dropped, overlimits }. */
  linkStats(h) {
    return this.stack.linkStats(h);
  }

  /** The bridge's (the pool's bridge `index`'s) per-receiver bandwidth and layer choices (`/debug/receivers`). */
  async receivers(index = 0) {
    const response = await fetch(`http://${this.stack.bridges[index].http}/debug/receivers`);
    return response.json();
  }

  /** Freezes one of the stack's processes (SIGSTOP): it answers nothing until `resume`. */
  pause(name) {
    this.stack.children[name].kill('SIGSTOP');
  }

  resume(name) {
    this.stack.children[name].kill('SIGCONT');
  }

  /** What one of the stack's processes ('focus', 'bridge', 'prosody') logged so far. */
  log(name) {
    return readFileSync(join(this.stack.settings.runDir, `${name}.log`), 'utf8');
  }

  /** The Prometheus text of the bridge (of the pool's bridge `index`). */
  async bridgeMetrics(index = 0) {
    const response = await fetch(`http://${this.stack.bridges[index].http}/metrics`);
    return response.text();
  }

  /** The Prometheus text of the focus. */
  async focusMetrics() {
    const response = await fetch(`http://${this.stack.focus.http}/metrics`);
    return response.text();
  }

  /** Sum of the samples of one bridge metric family (any labels). */
  async bridgeMetric(family) {
    return sumMetric(await this.bridgeMetrics(), family);
  }

  async report() {
    await reportPages(this.name, this.participants);
    const bridgeLogs = this.stack.bridges.map((_, i) => (i === 0 ? 'bridge.log' : `bridge${i}.log`));
    for (const log of ['focus.log', ...bridgeLogs, 'prosody.log', 'ejabberd.log']) {
      try {
        const lines = readFileSync(join(this.stack.settings.runDir, log), 'utf8').trim().split('\n');
        console.error(`--- ${log} (last 60 lines):\n${lines.slice(-60).join('\n')}`);
      } catch {
        console.error(`--- ${log}: none`);
      }
    }
  }
}

/** Saves a screenshot of each participant's page and prints its console and remote audio. */
export async function reportPages(name, participants) {
  mkdirSync(artifacts, { recursive: true });
  for (const participant of participants) {
    const file = join(artifacts, `${name}-${participant.name}.png`);
    await participant.page.screenshot({ path: file, fullPage: true }).catch(() => {});
    console.error(`--- ${participant.name}: screenshot ${file}; console:`);
    console.error(participant.console.join('\n') || '(empty)');
    const audio = await participant.remoteAudio().catch((error) => `unavailable: ${error.message}`);
    console.error(`--- ${participant.name}: remote audio: ${JSON.stringify(audio)}`);
  }
}

/**
 * Sum of the samples of one metric family in a Prometheus text, of those whose labels include
 * `labels` (e.g. { media: 'video' }; by default every sample).
 */
export function sumMetric(text, family, labels = {}) {
  const wanted = Object.entries(labels).map(([name, value]) => `${name}="${value}"`);
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) {
      continue;
    }
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (match && match[1] === family) {
      const has = (match[2] ?? '').slice(1, -1).split(',');
      if (wanted.every((label) => has.includes(label))) {
        sum += Number(match[3]);
      }
    }
  }
  return sum;
}

class Participant {
  constructor(name, context, page) {
    this.name = name;
    this.context = context;
    this.page = page;
    this.console = [];
    page.on('console', (message) => this.console.push(`[${message.type()}] ${message.text()}`));
    page.on('pageerror', (error) => this.console.push(`[pageerror] ${error.message}`));
  }

  async state() {
    return this.page.evaluate(() => window.tutti && window.tutti.state);
  }

  async waitForState(state, timeoutMs = 30000) {
    await waitFor(`${this.name} to reach '${state}'`, async () => {
      const current = await this.state();
      if (current === 'failed') {
        const errors = await this.page.evaluate(() => window.tutti.errors);
        throw new Error(`${this.name}'s page failed: ${errors.join(' / ')}`);
      }
      return current === state;
    }, timeoutMs);
  }

  /** Display names on the remote tiles. */
  async remoteTiles() {
    return this.page.$$eval('.tile:not(.local)', (tiles) => tiles.map((tile) => tile.dataset.name ?? ''));
  }

  /**
   * What lib-jitsi-meet and the browser know of each remote audio track: its owner, SSRC, muted
   * state and last audio level, and the receiver's synchronization sources (the levels the
   * browser read from the RFC 6464 header extension).
   */
  async remoteAudio() {
    return this.page.evaluate(() => {
      const { conference } = window.tutti;
      const tracks = conference.getParticipants().flatMap((p) => p.getTracks()
        .filter((t) => t.getType() === 'audio')
        .map((t) => ({ owner: p.getDisplayName(), ssrc: t.getSSRC(), muted: t.isMuted(), level: t.audioLevel })));
      const pc = conference.getActivePeerConnection()?.peerconnection;
      const receivers = (pc ? pc.getReceivers() : [])
        .filter((r) => r.track && r.track.kind === 'audio')
        .map((r) => ({ enabled: r.track.enabled, sources: r.getSynchronizationSources().map((s) => ({ ssrc: s.source, level: s.audioLevel })) }));
      return { tracks, receivers, speaking: window.tutti.events.filter((e) => e.type === 'speaking').map((e) => e.name) };
    });
  }

  /** The page's event log: tile-added, tile-removed, leave-clicked, with Date.now() times. */
  async events(type) {
    const events = await this.page.evaluate(() => window.tutti.events);
    return events.filter((event) => event.type === type);
  }

  /** lib-jitsi-meet's id of this participant (what the bridge's messages name it by). */
  async id() {
    return this.page.evaluate(() => window.tutti.conference.myUserId());
  }

  /**
   * Mutes or unmutes the page's `kind` ('audio' or 'video') track: lib-jitsi-meet sends silence
   * for a muted microphone, nothing for a muted camera.
   */
  async mute(kind, muted) {
    await this.page.evaluate(async ([type, mute]) => {
      const track = window.tutti.localTracks.find((t) => t.getType() === type);
      await (mute ? track.mute() : track.unmute());
    }, [kind, muted]);
  }

  /** The dominant speaker the bridge last named to this page (lib-jitsi-meet's id), and when. */
  async dominantSpeaker() {
    const told = await this.events('dominant-speaker');
    return told.length ? told[told.length - 1] : null;
  }

  /** The text the page shows as an error, or null. */
  async shownError() {
    return this.page.$eval('#error', (element) => (element.hidden ? null : element.textContent));
  }

  /** getStats of the conference's peer connection, reduced to what the tests look at. */
  async stats() {
    return this.page.evaluate(async () => {
      const pc = window.tutti.conference.getActivePeerConnection();
      if (!pc) {
        return null;
      }
      const report = await pc.peerconnection.getStats();
      const result = {
        inboundVideo: [], inboundAudio: [], outboundVideo: [], outboundAudio: [], candidatePair: null,
        localSdp: pc.peerconnection.localDescription?.sdp ?? '',
      };
      report.forEach((stat) => {
        if (stat.type === 'inbound-rtp' && stat.kind === 'video') {
          result.inboundVideo.push({
            ssrc: stat.ssrc,
            framesDecoded: stat.framesDecoded ?? 0,
            freezeCount: stat.freezeCount ?? 0,
            frameWidth: stat.frameWidth ?? 0,
            frameHeight: stat.frameHeight ?? 0,
            packetsReceived: stat.packetsReceived ?? 0,
          });
        } else if (stat.type === 'inbound-rtp' && stat.kind === 'audio') {
          result.inboundAudio.push({
            ssrc: stat.ssrc,
            packetsReceived: stat.packetsReceived ?? 0,
            audioLevel: stat.audioLevel ?? 0,
            totalAudioEnergy: stat.totalAudioEnergy ?? 0,
          });
        } else if (stat.type === 'outbound-rtp' && stat.kind === 'video') {
          result.outboundVideo.push({
            ssrc: stat.ssrc,
            bytesSent: stat.bytesSent ?? 0,
            timestamp: stat.timestamp,
            frameHeight: stat.frameHeight ?? 0,
            framesEncoded: stat.framesEncoded ?? 0,
            packetsSent: stat.packetsSent ?? 0,
            active: stat.active ?? true,
            rid: stat.rid ?? '',
          });
        } else if (stat.type === 'outbound-rtp' && stat.kind === 'audio') {
          result.outboundAudio.push({ ssrc: stat.ssrc, packetsSent: stat.packetsSent ?? 0 });
        } else if (stat.type === 'candidate-pair' && stat.nominated && stat.state === 'succeeded') {
          result.candidatePair = { availableOutgoingBitrate: stat.availableOutgoingBitrate ?? 0 };
        }
      });
      return result;
    });
  }

  /** Video bitrate sent over all simulcast encodings, in kbit/s, measured over `windowMs`. */
  async videoSendKbps(windowMs = 2000) {
    const sample = async () => {
      const stats = await this.stats();
      return {
        bytes: stats.outboundVideo.reduce((sum, s) => sum + s.bytesSent, 0),
        at: Math.max(0, ...stats.outboundVideo.map((s) => s.timestamp)),
      };
    };
    const before = await sample();
    await sleep(windowMs);
    const after = await sample();
    return ((after.bytes - before.bytes) * 8) / Math.max(1, after.at - before.at);
  }

  /**
   * The port of the bridge this page's media goes to (the remote side of its transport's
   * selected ICE pair), once there is one.
   */
  async bridgePort(timeoutMs = 10000) {
    return waitFor(`${this.name}'s selected ICE pair`, () => this.page.evaluate(async () => {
      const pc = window.tutti.conference.getActivePeerConnection();
      if (!pc) {
        return null;
      }
      const report = await pc.peerconnection.getStats();
      let port = null;
      report.forEach((stat) => {
        if (stat.type === 'transport' && stat.selectedCandidatePairId) {
          const pair = report.get(stat.selectedCandidatePairId);
          port = report.get(pair?.remoteCandidateId)?.port ?? null;
        }
      });
      return port;
    }), timeoutMs, 100);
  }

  /** SSRCs of the inbound video streams that decoded frames, with their frame counts. */
  async decodedVideo() {
    const stats = await this.stats();
    return stats.inboundVideo.filter((v) => v.framesDecoded > 0 && v.frameWidth > 0);
  }

  /**
   * SSRCs of the remote video tracks this page has from the participant named `name` (what the
   * focus signalled for them: the SSRC the bridge forwards each source under).
   */
  async videoSsrcsFrom(name) {
    return this.page.evaluate((who) => window.tutti.conference.getParticipants()
      .filter((p) => p.getDisplayName() === who)
      .flatMap((p) => p.getTracks())
      .filter((t) => t.getType() === 'video')
      .map((t) => t.getSSRC()), name);
  }

  /**
   * Waits until `count` inbound video streams decode, and keep decoding (their frame counts
   * rise by more than 10 over a later sample).
   */
  async waitForDecodedVideo(count, timeoutMs = 20000) {
    const first = await waitFor(`${this.name} to decode ${count} video streams`, async () => {
      const decoding = await this.decodedVideo();
      return decoding.length >= count && decoding;
    }, timeoutMs);
    await waitFor(`${this.name}'s decoded frame counts to rise`, async () => {
      const now = await this.decodedVideo();
      const risen = now.filter((v) => {
        const before = first.find((b) => b.ssrc === v.ssrc);
        return before && v.framesDecoded > before.framesDecoded + 10;
      });
      return risen.length >= count;
    }, timeoutMs);
  }

  /**
   * What this page received of each remote participant, by display name (one getStats): of its
   * video the frames decoded, key frames decoded, frames assembled (received) and dropped,
   * packets, NACKs and PLIs sent and the number of inbound streams, of its audio the packets and
   * total energy, summed over the inbound streams of the SSRCs lib-jitsi-meet was told are its.
   */
  async receivedFrom() {
    return this.page.evaluate(async () => {
      const { conference } = window.tutti;
      const owners = new Map();
      for (const p of conference.getParticipants()) {
        for (const track of p.getTracks()) {
          owners.set(track.getSSRC(), { name: p.getDisplayName(), kind: track.getType() });
        }
      }
      const received = {};
      const pc = conference.getActivePeerConnection();
      if (!pc) {
        return received;
      }
      (await pc.peerconnection.getStats()).forEach((stat) => {
        const owner = stat.type === 'inbound-rtp' && owners.get(stat.ssrc);
        if (!owner || owner.kind !== stat.kind) {
          return;
        }
        received[owner.name] ??= {
          framesDecoded: 0, keyFramesDecoded: 0, framesReceived: 0, framesDropped: 0, videoPackets: 0, nackSent: 0,
          pliSent: 0, videoStreams: 0, audioPackets: 0, audioEnergy: 0,
        };
        if (stat.kind === 'video') {
          received[owner.name].framesDecoded += stat.framesDecoded ?? 0;
          received[owner.name].keyFramesDecoded += stat.keyFramesDecoded ?? 0;
          received[owner.name].framesReceived += stat.framesReceived ?? 0;
          received[owner.name].framesDropped += stat.framesDropped ?? 0;
          received[owner.name].videoPackets += stat.packetsReceived ?? 0;
          received[owner.name].nackSent += stat.nackCount ?? 0;
          received[owner.name].pliSent += stat.pliCount ?? 0;
          received[owner.name].videoStreams += 1;
        } else {
          received[owner.name].audioPackets += stat.packetsReceived ?? 0;
          received[owner.name].audioEnergy += stat.totalAudioEnergy ?? 0;
        }
      });
      return received;
    });
  }

  /**
   * Every inbound video stream of this page's bridge connection (one getStats): its SSRC,
   * packets, frames and key frames decoded, PLIs and NACKs sent, and the remote track
   * lib-jitsi-meet made of it (owner, muted), if any; with the video SSRCs of the remote
   * description (`signalled`).
   */
  async inboundVideo() {
    return this.page.evaluate(async () => {
      const { conference } = window.tutti;
      const tracks = new Map();
      for (const p of conference.getParticipants()) {
        for (const track of p.getTracks()) {
          tracks.set(track.getSSRC(), { owner: p.getDisplayName(), muted: track.isMuted() });
        }
      }
      const pc = conference.getActivePeerConnection();
      const streams = [];
      (await pc?.peerconnection.getStats())?.forEach((stat) => {
        if (stat.type === 'inbound-rtp' && stat.kind === 'video') {
          streams.push({
            ssrc: stat.ssrc, packets: stat.packetsReceived, frames: stat.framesDecoded, keyFrames: stat.keyFramesDecoded,
            plis: stat.pliCount, nacks: stat.nackCount, track: tracks.get(stat.ssrc) ?? null,
          });
        }
      });
      const signalled = (pc?.peerconnection.remoteDescription?.sdp ?? '').split('\r\nm=')
        .filter((section) => section.startsWith('video'))
        .flatMap((section) => [...section.matchAll(/a=ssrc:(\d+) msid:(\S+)/g)].map((m) => `${m[1]} ${m[2]}`));
      return { streams, signalled };
    });
  }

  /** Waits until `count` inbound audio streams carry sound. */
  async waitForAudio(count, timeoutMs = 20000) {
    await waitFor(`${this.name} to hear ${count} audio streams`, async () => {
      const stats = await this.stats();
      const hearing = stats.inboundAudio.filter(
        (a) => a.packetsReceived > 50 && (a.audioLevel > 0 || a.totalAudioEnergy > 0),
      );
      return hearing.length >= count;
    }, timeoutMs);
  }

  /** Waits until the remote tiles show exactly `names`. */
  async waitForTiles(names, timeoutMs = 20000) {
    const wanted = JSON.stringify([...names].sort());
    await waitFor(`${this.name} to show tiles for [${names}]`, async () => {
      const tiles = (await this.remoteTiles()).sort();
      return JSON.stringify(tiles) === wanted;
    }, timeoutMs, 100);
  }

  async leave() {
    await this.page.click('#leave-button');
    await this.waitForState('idle');
  }

  async close() {
    await this.context.close();
  }
}
