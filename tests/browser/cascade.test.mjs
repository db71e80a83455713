// Cascading (issue 18) with lib-jitsi-meet in Chromium, every process on a host of its own: a pool
// of three bridges (each behind its own link), the focus with a cap of two participants per
// bridge, and four pages on two hosts of their own (Ada and Bob on one, Cyd and Dee on the
// other; Chromium's fake camera at 360 lines, 15 fps: two simulcast layers, 180 and 360; the
// noise camera is not used: its 180-line layer gets too few bits for noise and its encoder drops
// most frames, 2 frames/s measured). One stack for the whole story:
// 1. Ada and Bob fill one bridge (the near one), Cyd and Dee are put on another (the far one):
//    the conference spans two bridges, linked by a relay. Every page decodes the other three
//    videos and hears the other three microphones, and each near source crosses the relay once:
//    the near bridge's relay packets are what it takes in from Ada and Bob (less the padding it
//    consumes), not that once per far receiver, and the far bridge receives all of them.
// 2. Cyd, behind the far bridge, puts Ada on stage: she decodes Ada's top layer (360), while
//    Dee, asking 180 lines of everyone, decodes 180.
// 3. The path between the two bridges is cut (and restored afterwards): the relay times out
//    (the bridges' consent timeout, 5 s here), the focus gives up the far leg and moves Cyd
//    and Dee to the third bridge (the near one is at its cap), linked to the near one by a new
//    relay; Ada and Bob keep their sessions and each other's video throughout, and everyone
//    decodes everyone again.
// 4. The bridge Cyd and Dee are on is killed: they move to a remaining bridge (the near one: the
//    far one was given up for the room for a minute), while Ada and Bob keep their sessions and
//    keep decoding each other through the move, and everyone decodes everyone again.
// In 3 and 4, Ada and Bob take each move in as two renegotiations (at most three), not one
// source-remove and one source-add per moved page.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { activeEncodings, sleep, sumMetric, waitFor, withWorld } from './harness.mjs';

const CONSENT_TIMEOUT_S = 5;
/** From a fault to every page decoding every other again. */
const RECOVERY_BOUND_MS = 15000;
/** Longest time Ada and Bob may go without a new frame of each other's while the others move. */
const STALL_BOUND_MS = 1500;
/** Frames a video must gain, from before its first new frame, to count as decoding. */
const RISING = 3;
/** Audio packets a stream must gain, with some energy, to count as heard. */
const HEARD = 10;

const MEDIA_PORT = 10000;
const bridgeName = (index) => (index === 0 ? 'bridge' : `bridge${index}`);

/** The pool's index of the bridge `person`'s media goes to. */
async function bridgeOf(person) {
  return (await person.bridgePort()) - MEDIA_PORT;
}

/**
 * Waits until every page decodes every other page's video and hears its audio: each of the 12
 * videos and 12 audios seen rising after `since` (from the last sample before it first rose, a
 * video's decoded frames rising by RISING, an audio's packets by HEARD with its energy rising),
 * sampled every 200 ms. Resolves with, per page, when each other page's video (v) and audio (a)
 * first rose, in ms after `since`.
 */
async function everyoneDecodesEveryone(people, timeoutMs, since = Date.now()) {
  const names = people.map((p) => p.name);
  const each = await Promise.all(people.map(async (person) => {
    const streams = names.filter((n) => n !== person.name).flatMap((o) => [[o, 'v'], [o, 'a']]);
    const count = (received, [other, kind]) => (kind === 'v'
      ? received[other]?.framesDecoded ?? 0 : received[other]?.audioPackets ?? 0);
    const energy = (received, [other]) => received[other]?.audioEnergy ?? 0;
    /** Per stream, its first sample that rose: { at, received }. */
    const rose = new Map();
    let previous = await person.receivedFrom();
    let waiting = [];
    await waitFor(`${person.name} to decode and hear everyone`, async () => {
      const received = await person.receivedFrom();
      const at = Date.now() - since;
      waiting = streams.filter((stream) => {
        const key = stream.join(' ');
        const start = rose.get(key);
        if (!start || count(received, stream) < count(start.received, stream)) {
          rose.delete(key);
          if (count(received, stream) > count(previous, stream)) {
            rose.set(key, { at, received: previous });
          }
          return true;
        }
        return stream[1] === 'v'
          ? count(received, stream) < count(start.received, stream) + RISING
          : count(received, stream) < count(start.received, stream) + HEARD
            || energy(received, stream) <= energy(start.received, stream);
      });
      previous = received;
      return waiting.length === 0;
    }, timeoutMs, 200).catch((error) => {
      throw new Error(`${error.message}; not yet: ${waiting.map((s) => s.join(' '))}; last: ${JSON.stringify(previous)}`);
    });
    const times = Object.fromEntries(names.filter((n) => n !== person.name).map((o) => [
      o, `v${rose.get(`${o} v`).at} a${rose.get(`${o} a`).at}`]));
    return `${person.name} ${JSON.stringify(times)}`;
  }));
  return each.join(', ');
}

/**
 * Remembers each page's peer connection, to tell later whether it got a new session, and records
 * from now on when its signalling state changes (each renegotiation: `have-remote-offer`, then
 * `stable`), for a gap's report.
 */
async function markSessions(people) {
  await Promise.all(people.map((p) => p.page.evaluate(() => {
    window.session = window.tutti.conference.getActivePeerConnection();
    const pc = window.session?.peerconnection;
    window.signalling = [];
    if (pc && !pc.tuttiWatched) {
      pc.tuttiWatched = true;
      pc.addEventListener('signalingstatechange', () => window.signalling.push([Date.now(), pc.signalingState]));
    }
  })));
}

/** When `person`'s signalling state changed since it was marked, in ms after `since`. */
async function signallingSince(person, since) {
  const changes = await person.page.evaluate(() => window.signalling ?? []);
  return changes.map(([at, state]) => `${state}@${at - since}`).join(' ');
}

/**
 * Checks that `people`, who kept their sessions through a move of two others, renegotiated at
 * most three times since they were marked: the focus tells them in one source-remove that both
 * went and in one source-add that both came back (a third when one of the two comes back more
 * than the focus's MOVE_HOLD after the other); told of each moved page on its own, they took
 * four.
 */
async function assertOneUpdatePerMove(people) {
  for (const person of people) {
    const changes = await person.page.evaluate(() => window.signalling ?? []);
    const renegotiations = changes.filter(([, state]) => state === 'have-remote-offer').length;
    assert.ok(renegotiations <= 3, `${person.name} renegotiated ${renegotiations} times for one move`);
  }
}

async function onNewSession(person) {
  return person.page.evaluate(() => {
    const pc = window.tutti.conference.getActivePeerConnection();
    return Boolean(pc) && pc !== window.session;
  });
}

/**
 * What the bridge `index` does with `viewer`'s video from the page named `sender`
 * (`/debug/receivers`: the encodings it knows with their measured rates, the layer its allocator
 * wants and the one it forwards, whether it waits for a key frame; the viewer's estimate, what
 * set it, what it acknowledged, its desired rate and the endpoints it gets video from; and what
 * it wants of every other source, by sender: `target/forwarding`).
 */
async function bridgeView(world, index, viewer, senderId) {
  const receivers = await world.receivers(index);
  const viewerId = await viewer.id();
  const receiver = receivers.find((r) => r.participant_id === viewerId);
  const source = receiver?.sources?.find((s) => s.sender === senderId || s.source.startsWith(senderId));
  const layer = (s) => `${s.target ? s.target.join('.') : '-'}/${s.forwarding ?? '-'}${s.waiting_for_keyframe ? ' waiting' : ''}`;
  return source && {
    encodings: source.encodings.map((e) => `${e.height}${e.active ? '' : ' off'} ${e.bps_by_temporal_layer.join('/')}`),
    target: source.target,
    forwarding: source.forwarding,
    waiting: source.waiting_for_keyframe,
    estimate: `${receiver.estimate_bps} (${receiver.estimate_limited_by}, acked ${receiver.acknowledged_bps})`,
    desired: receiver.desired_bps,
    forwarded: receiver.forwarded_endpoints,
    others: Object.fromEntries(receiver.sources.filter((s) => s !== source).map((s) => [s.sender, layer(s)])),
  };
}

/** Per simulcast encoding of `person`'s camera (by height): frames encoded and packets sent. */
async function encoded(person) {
  const stats = await person.stats();
  return Object.fromEntries((stats?.outboundVideo ?? []).map((e) => [
    e.rid || e.ssrc, { height: e.frameHeight, frames: e.framesEncoded, packets: e.packetsSent, active: e.active }]));
}

/**
 * Watches `pairs` ([viewer, sender page]) every 250 ms from `since` until `stop()` is called;
 * resolves with the longest time any viewer went without a new decoded frame of its sender's
 * video ({ ms, pair, at: when that gap ended, after `since`, and what the viewer received and
 * sent in it: packets, framesReceived (assembled), framesDropped, nacks, plis, keyFrames,
 * streams; what the sender encoded and sent in it, per encoding; `timeline`: every change of
 * `describe(viewer, sender)`, the bridge's view of that source and of the viewer's allocation,
 * from a second before the gap to its end, in ms after `since`; and the viewer's renegotiations
 * since `since`).
 */
function watchDecoding(pairs, since, describe) {
  let running = true;
  const watched = (async () => {
    const last = new Map();
    /** Per pair: the bridge's view at each change, [{ at, view }]. */
    const views = new Map();
    let longest = { ms: 0 };
    while (running) {
      for (const [viewer, sender] of pairs) {
        const pair = `${viewer.name}<-${sender.name}`;
        const [video, view, sent] = await Promise.all([
          viewer.receivedFrom().then((r) => r[sender.name] ?? {}),
          describe(viewer, sender.name).catch((error) => ({ error: error.message })),
          encoded(sender).catch(() => ({})),
        ]);
        const now = Date.now();
        const changes = views.get(pair) ?? [];
        const text = JSON.stringify(view);
        if (changes.at(-1)?.text !== text) {
          changes.push({ at: now, text, view });
        }
        views.set(pair, changes);
        const frames = video.framesDecoded ?? 0;
        const seen = last.get(pair);
        if (!seen || frames > seen.video.framesDecoded) {
          last.set(pair, { video: { ...video, framesDecoded: frames }, sent, at: now });
        } else if (now - seen.at > longest.ms) {
          // With what came meanwhile: no packets, or packets making no frames (and then whether
          // the viewer asked for a key frame), or another inbound stream; and what the sender
          // encoded and sent meanwhile.
          const gained = (field) => (video[field] ?? 0) - (seen.video[field] ?? 0);
          const senderGained = Object.fromEntries(Object.entries(sent).map(([key, e]) => [
            `${key}@${e.height}${e.active ? '' : ' off'}`,
            `frames +${e.frames - (seen.sent[key]?.frames ?? 0)} packets +${e.packets - (seen.sent[key]?.packets ?? 0)}`]));
          longest = {
            ms: now - seen.at, pair, at: now - since, packets: gained('videoPackets'), framesReceived: gained('framesReceived'),
            framesDropped: gained('framesDropped'), nacks: gained('nackSent'), plis: gained('pliSent'),
            keyFrames: gained('keyFramesDecoded'), streams: `${seen.video.videoStreams}->${video.videoStreams}`,
            sender: senderGained,
            timeline: changes.filter((c, i) => c.at >= seen.at - 1000 || changes[i + 1]?.at >= seen.at - 1000)
              .map((c) => ({ at: c.at - since, ...c.view })),
            signalling: await signallingSince(viewer, since),
          };
        }
      }
      await sleep(250);
    }
    return longest;
  })();
  // Its failure (a page closed under it) is reported by stop(), or not at all if the test failed
  // before that.
  watched.catch(() => {});
  return { stop: () => { running = false; return watched; } };
}

/** RTP packets `person` sent (every encoding of its camera, and its microphone). */
async function packetsSent(person) {
  const stats = await person.stats();
  return [...stats.outboundVideo, ...stats.outboundAudio].reduce((sum, s) => sum + s.packetsSent, 0);
}

/** RTP packets `person` received of the sources of `senders` (video and audio). */
async function packetsFrom(person, senders) {
  const stats = await person.stats();
  const audio = (await person.remoteAudio()).tracks.filter((t) => senders.includes(t.owner)).map((t) => t.ssrc);
  const video = (await Promise.all(senders.map((s) => person.videoSsrcsFrom(s)))).flat();
  return [...stats.inboundVideo, ...stats.inboundAudio]
    .filter((s) => audio.includes(s.ssrc) || video.includes(s.ssrc))
    .reduce((sum, s) => sum + s.packetsReceived, 0);
}

test('a conference across bridges linked by a relay: media, layers, a cut link, a killed bridge', { timeout: 240000 }, async () => {
  const started = Date.now();
  const bridgeEnv = { TUTTI_BRIDGE_CONSENT_TIMEOUT_SECS: String(CONSENT_TIMEOUT_S) };
  await withWorld('cascade', async (world) => {
    const names = ['ada', 'bob', 'cyd', 'dee'];
    const people = [];
    for (const [i, name] of names.entries()) {
      people.push(await world.join('cascade', name, {
        host: i < 2 ? 0 : 1, capture: { fps: '15' }, query: { receive: '180' },
      }));
    }
    const [ada, bob, cyd, dee] = people;
    const joined = Date.now();

    // 1. The conference spans two bridges; everyone decodes and hears everyone.
    const near = await bridgeOf(ada);
    const far = await bridgeOf(cyd);
    const third = 3 - near - far;
    assert.notEqual(near, far, 'ada and cyd are on different bridges');
    assert.equal(await bridgeOf(bob), near, 'bob is with ada');
    assert.equal(await bridgeOf(dee), far, 'dee is with cyd');
    const endpoints = async (index) => sumMetric(await world.bridgeMetrics(index), 'tutti_bridge_endpoints');
    assert.deepEqual([await endpoints(near), await endpoints(far), await endpoints(third)], [2, 2, 0]);
    await everyoneDecodesEveryone(people, 30000);
    const focusCount = async (family) => sumMetric(await world.focusMetrics(), family);
    assert.equal(await focusCount('tutti_focus_relays_linked_total'), 1, 'one relay linked');
    const decoding = Date.now();
    console.log(`cascade: joined in ${joined - started} ms (stack included), all 12 videos and audios in ${decoding - joined} ms more`);

    // Each near source crosses the relay once: over a window, the near bridge's relay packets
    // are what it took in from Ada and Bob (every layer and their audio), not that once per far
    // receiver.
    const sample = async () => {
      const [nearText, farText] = await Promise.all([world.bridgeMetrics(near), world.bridgeMetrics(far)]);
      const [sent, cydGot, deeGot] = await Promise.all([
        Promise.all([ada, bob].map(packetsSent)).then((counts) => counts[0] + counts[1]),
        packetsFrom(cyd, ['ada', 'bob']),
        packetsFrom(dee, ['ada', 'bob']),
      ]);
      const rtpIn = (text) => sumMetric(text, 'tutti_bridge_packets_received_total', { media: 'audio' })
        + sumMetric(text, 'tutti_bridge_packets_received_total', { media: 'video' });
      return {
        nearRtpIn: rtpIn(nearText),
        nearRelayIn: sumMetric(nearText, 'tutti_bridge_relay_packets_received_total'),
        nearConsumed: sumMetric(nearText, 'tutti_bridge_rtx_consumed_total'),
        nearDrops: sumMetric(nearText, 'tutti_bridge_drops_total'),
        farDrops: sumMetric(farText, 'tutti_bridge_drops_total'),
        relaySent: sumMetric(nearText, 'tutti_bridge_relay_packets_sent_total'),
        relayBytes: sumMetric(nearText, 'tutti_bridge_relay_bytes_sent_total'),
        relayReceived: sumMetric(farText, 'tutti_bridge_relay_packets_received_total'),
        // The far bridge's receive statistics of the relay (its receiver reports on it).
        relayLossSum: sumMetric(farText, 'tutti_bridge_loss_ratio_sum', { direction: 'relay_in' }),
        relayReports: sumMetric(farText, 'tutti_bridge_loss_ratio_count', { direction: 'relay_in' }),
        sent,
        cydGot,
        deeGot,
      };
    };
    const before = await sample();
    await sleep(5000);
    const after = await sample();
    const d = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]));
    console.log(`cascade: in 5 s, ada and bob sent ${d.sent} RTP packets; the near bridge took in ${d.nearRtpIn} `
      + `(${d.nearRelayIn} of them over the relay, ${d.nearConsumed} padding or unasked retransmissions) and sent `
      + `${d.relaySent} on the relay (${d.relayBytes} bytes); the far bridge received ${d.relayReceived} on it; `
      + `cyd got ${d.cydGot} and dee ${d.deeGot} of ada's and bob's; drops: near ${d.nearDrops}, far ${d.farDrops}`);
    // What the near bridge took in from Ada and Bob and forwards (its RTP in, less what came over
    // the relay and the padding and unasked retransmissions it consumes) crosses once.
    const forwardable = d.nearRtpIn - d.nearRelayIn - d.nearConsumed;
    const once = d.relaySent / forwardable;
    assert.ok(once > 0.97 && once < 1.03, `relay packets / near packets to forward = ${once.toFixed(3)}, not 1`);
    // And all of it arrives: the far bridge's reports on the relay, from the sequence numbers it
    // received, say nothing was lost (the two bridges' packet counters are read a moment apart).
    const relayLoss = d.relayLossSum / d.relayReports;
    console.log(`cascade: the far bridge's ${d.relayReports} reports on the relay in the window: mean loss ${relayLoss}`);
    assert.ok(d.relayReports > 0 && relayLoss < 0.01, `loss on the relay ${relayLoss} in ${d.relayReports} reports`);

    // 2. Cyd, behind the far bridge, puts Ada on stage: Ada's top layer reaches her.
    const adaId = await ada.id();
    await cyd.page.evaluate((id) => window.tutti.conference.setReceiverConstraints({
      lastN: -1,
      selectedEndpoints: [id],
      onStageEndpoints: [id],
      defaultConstraints: { maxHeight: 180 },
      constraints: { [id]: { maxHeight: 360 } },
    }), adaId);
    const adaHeight = async (person) => {
      const ssrcs = await person.videoSsrcsFrom('ada');
      return (await person.decodedVideo()).find((v) => ssrcs.includes(v.ssrc))?.frameHeight ?? 0;
    };
    let last = {};
    await waitFor('cyd to decode ada at her top layer', async () => {
      const active = await activeEncodings(ada);
      last = { active, cyd: await adaHeight(cyd), dee: await adaHeight(dee) };
      const top = Math.max(...active);
      return active.length >= 2 && last.cyd === top && last.dee === Math.min(...active);
    }, 30000).catch((error) => {
      throw new Error(`${error.message}; last: ada's active heights ${last.active}, cyd decodes ${last.cyd}, dee ${last.dee}`);
    });
    console.log(`cascade: ada sends ${last.active}; cyd (on stage, far bridge) decodes ${last.cyd}, dee ${last.dee}`);
    assert.equal(last.cyd, 360);
    assert.equal(last.dee, 180);

    // 3. The path between the near and the far bridge cut.
    const ids = { ada: adaId, bob: await bob.id() };
    const describeNear = (viewer, sender) => bridgeView(world, near, viewer, ids[sender]);
    await markSessions(people);
    const failuresBefore = await focusCount('tutti_focus_relay_failures_total');
    const cut = Date.now();
    const partners = watchDecoding([[ada, bob], [bob, ada]], cut, describeNear);
    world.setPath(near, far, false);
    await Promise.all([cyd, dee].map((p) => waitFor(`${p.name} on a new session`, () => onNewSession(p), RECOVERY_BOUND_MS, 100)));
    const moved = Date.now() - cut;
    const cutEach = await everyoneDecodesEveryone(people, Math.max(1, RECOVERY_BOUND_MS - (Date.now() - cut)), cut);
    const recovered = Date.now() - cut;
    const cutStall = await partners.stop();
    world.setPath(near, far, true);
    console.log(`cascade: path cut: cyd and dee on new sessions ${moved} ms after, everyone decoding everyone `
      + `${recovered} ms after (${cutEach}); ada and bob's longest gap without a frame of each other: ${JSON.stringify(cutStall)}; `
      + `their signalling states since the cut: ada ${await signallingSince(ada, cut)}, bob ${await signallingSince(bob, cut)}`);
    for (const person of [cyd, dee]) {
      assert.equal(await bridgeOf(person), third, `${person.name} moved to the third bridge`);
    }
    for (const person of [ada, bob]) {
      assert.equal(await onNewSession(person), false, `${person.name} kept its session`);
      assert.equal(await bridgeOf(person), near);
    }
    assert.ok(moved >= CONSENT_TIMEOUT_S * 1000 - 500, `moved ${moved} ms after the cut: before the relay timed out?`);
    assert.ok(recovered <= RECOVERY_BOUND_MS, `everyone decoded everyone ${recovered} ms after the cut`);
    assert.ok(cutStall.ms <= STALL_BOUND_MS, `ada and bob stalled ${cutStall.ms} ms`);
    await assertOneUpdatePerMove([ada, bob]);
    assert.equal(await focusCount('tutti_focus_relay_failures_total') - failuresBefore, 1, 'one relay given up');
    assert.equal(await focusCount('tutti_focus_relays_linked_total'), 2, 'the near and the third bridge linked');
    assert.deepEqual([await endpoints(near), await endpoints(far), await endpoints(third)], [2, 0, 2]);

    // 4. The third bridge, where Cyd and Dee are now, killed.
    await markSessions(people);
    const killed = Date.now();
    const watching = watchDecoding([[ada, bob], [bob, ada]], killed, describeNear);
    await world.kill(bridgeName(third));
    await Promise.all([cyd, dee].map((p) => waitFor(`${p.name} on a new session`, () => onNewSession(p), RECOVERY_BOUND_MS, 100)));
    const movedAgain = Date.now() - killed;
    const killEach = await everyoneDecodesEveryone(people, Math.max(1, RECOVERY_BOUND_MS - (Date.now() - killed)), killed);
    const recoveredAgain = Date.now() - killed;
    const killStall = await watching.stop();
    console.log(`cascade: bridge killed: cyd and dee on new sessions ${movedAgain} ms after, everyone decoding `
      + `everyone ${recoveredAgain} ms after (${killEach}); ada and bob's longest gap without a frame of each other: ${JSON.stringify(killStall)}; `
      + `their signalling states since the kill: ada ${await signallingSince(ada, killed)}, bob ${await signallingSince(bob, killed)}`);
    for (const person of [cyd, dee]) {
      assert.equal(await bridgeOf(person), near, `${person.name} moved to the near bridge (the far one is given up)`);
    }
    for (const person of [ada, bob]) {
      assert.equal(await onNewSession(person), false, `${person.name} kept its session`);
    }
    assert.ok(killStall.ms <= STALL_BOUND_MS, `ada and bob stalled ${killStall.ms} ms`);
    await assertOneUpdatePerMove([ada, bob]);
    assert.ok(recoveredAgain <= RECOVERY_BOUND_MS, `everyone decoded everyone ${recoveredAgain} ms after the kill`);
    assert.equal(await endpoints(near), 4);
    for (const person of people) {
      const removed = (await person.events('tile-removed')).filter((e) => e.at >= joined);
      assert.deepEqual(removed, [], `${person.name} saw nobody leave`);
    }
    console.log(`cascade: the whole test ${Date.now() - started} ms`);
  }, {
    bridges: 3,
    linked: true,
    hosts: 2,
    bridgeEnvs: [bridgeEnv, bridgeEnv, bridgeEnv],
    focusEnv: { TUTTI_FOCUS_PARTICIPANTS_PER_BRIDGE: '2' },
  });
});
