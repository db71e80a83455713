// Tutti's demo page: one lib-jitsi-meet conference, a tile per participant.
// window.TUTTI_CONFIG comes from config.js, written by the stack that serves this page.
'use strict';

const config = window.TUTTI_CONFIG;
const { events, errors } = JitsiMeetJS;

// How long the focus may take to let us into the room, and ICE/DTLS to come up, before the page
// says so: lib-jitsi-meet itself retries the focus silently forever.
const FOCUS_PATIENCE_MS = 10000;
const MEDIA_PATIENCE_MS = 15000;
const INTERRUPTION_CHECK_MS = 500;
// Audio level (0..1) above which a tile shows its participant as speaking.
const SPEAKING_LEVEL = 0.02;

const page = {
  form: document.getElementById('join'),
  room: document.getElementById('room'),
  name: document.getElementById('name'),
  join: document.getElementById('join-button'),
  leave: document.getElementById('leave-button'),
  status: document.getElementById('status'),
  error: document.getElementById('error'),
  tiles: document.getElementById('tiles'),
};

// What tests and curious people can inspect from the console.
window.tutti = { connection: null, conference: null, localTracks: [], state: 'idle', errors: [], events: [] };

function note(type, detail) {
  window.tutti.events.push({ type, at: Date.now(), ...detail });
}

function setStatus(text, state) {
  page.status.textContent = text;
  if (state) {
    window.tutti.state = state;
  }
}

function showError(text) {
  window.tutti.errors.push(text);
  page.error.textContent = text;
  page.error.hidden = false;
}

function clearError() {
  page.error.hidden = true;
  page.error.textContent = '';
}

function tileFor(id, name, local) {
  let tile = page.tiles.querySelector(`.tile[data-id="${CSS.escape(id)}"]`);
  if (!tile) {
    tile = document.createElement('div');
    tile.className = local ? 'tile local' : 'tile';
    tile.dataset.id = id;
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.muted = true;
    const label = document.createElement('span');
    label.className = 'name';
    tile.append(video, label);
    page.tiles.append(tile);
    note('tile-added', { id });
  }
  if (name !== undefined) {
    tile.dataset.name = name;
    tile.querySelector('.name').textContent = name || 'Guest';
  }
  return tile;
}

function removeTile(id) {
  const tile = page.tiles.querySelector(`.tile[data-id="${CSS.escape(id)}"]`);
  if (tile) {
    tile.remove();
    note('tile-removed', { id, name: tile.dataset.name });
  }
}

function attachTrack(tile, track) {
  if (track.getType() === 'video') {
    track.attach(tile.querySelector('video'));
    return;
  }
  if (track.isLocal()) {
    return;
  }
  const audio = document.createElement('audio');
  audio.autoplay = true;
  audio.dataset.trackId = track.getId();
  tile.append(audio);
  track.attach(audio);
}

function detachTrack(tile, track) {
  const elements = track.getType() === 'video'
    ? [tile.querySelector('video')]
    : [...tile.querySelectorAll(`audio[data-track-id="${CSS.escape(track.getId())}"]`)];
  for (const element of elements) {
    track.detach(element);
    if (element.tagName === 'AUDIO') {
      element.remove();
    }
  }
}

function connect() {
  return new Promise((resolve, reject) => {
    const connection = new JitsiMeetJS.JitsiConnection(null, null, {
      hosts: {
        domain: config.domain,
        anonymousdomain: config.guestDomain,
        muc: config.muc,
        focus: config.focus,
      },
      serviceUrl: transport === 'bosh'
        ? `${location.protocol}//${location.host}/http-bind`
        : `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/xmpp-websocket`,
      // TURN servers come from the XMPP domain (XEP-0215); for the bridge connection
      // lib-jitsi-meet keeps only TURN over TCP unless this allows UDP too (`?turnudp=0` on
      // the page's address keeps TCP only).
      useTurnUdp: Boolean(config.useTurnUdp) && new URLSearchParams(location.search).get('turnudp') !== '0',
    });
    const C = events.connection;
    connection.addEventListener(C.CONNECTION_ESTABLISHED, () => resolve(connection));
    connection.addEventListener(C.CONNECTION_FAILED, (error, message) => {
      reject(new Error(`cannot reach the XMPP server (${error}${message ? `: ${message}` : ''})`));
    });
    connection.addEventListener(C.CONNECTION_DISCONNECTED, () => {
      if (!['idle', 'leaving'].includes(window.tutti.state)) {
        showError('The connection to the XMPP server was lost.');
        setStatus('Disconnected.', 'failed');
      }
    });
    connection.connect();
  });
}

/** Camera capture, from the page's address (see the end of this file). */
const capture = {
  resolution: Number(new URLSearchParams(location.search).get('resolution')) || 360,
  fps: Number(new URLSearchParams(location.search).get('fps')) || 30,
};
/**
 * The tallest video the page asks the bridge for (its tiles are 320 pixels wide and up), from
 * &receive=HEIGHT; the bridge tells each sender the tallest anyone asks of it, and senders stop
 * encoding the layers above.
 */
const receiveHeight = Number(new URLSearchParams(location.search).get('receive')) || 360;
/**
 * The bandwidth (bits/s) the bridge is to assume towards the page for video, in place of its
 * estimate, from &assumed=BPS (the colibri `assumedBandwidthBps`; for tests whose subject is not
 * bandwidth estimation).
 */
const assumedBandwidth = Number(new URLSearchParams(location.search).get('assumed')) || null;

/**
 * How the page reaches the XMPP server, from &transport=: 'websocket' (default, /xmpp-websocket)
 * or 'bosh' (BOSH, XEP-0124/0206, at /http-bind: long-polled HTTP requests, for networks that
 * let no WebSocket through). lib-jitsi-meet picks BOSH for an http(s) service URL.
 */
const transport = new URLSearchParams(location.search).get('transport') === 'bosh' ? 'bosh' : 'websocket';

/** Where the participant is, from the page's address: sent in its MUC presence (empty: none). */
const region = new URLSearchParams(location.search).get('region') || '';

async function join(roomName, displayName) {
  clearError();
  page.join.disabled = true;
  setStatus('Connecting…', 'connecting');
  let tracks;
  try {
    tracks = await JitsiMeetJS.createLocalTracks({
      devices: ['audio', 'video'],
      resolution: capture.resolution,
      constraints: { video: { frameRate: { max: capture.fps } } },
    });
  } catch (error) {
    throw new Error(`camera or microphone unavailable: ${error.name || error.message || error}`);
  }
  window.tutti.localTracks = tracks;
  const connection = await connect();
  window.tutti.connection = connection;
  const conference = connection.initJitsiConference(roomName, {
    p2p: { enabled: false },
    // lib-jitsi-meet puts <region id=…/> in the presence; the focus places a new conference on
    // a bridge in its first participant's region (docs/focus.md, Bridges).
    ...(region ? { deploymentInfo: { userRegion: region } } : {}),
    // Speaking indicators come from the receive-side audio levels.
    enableTalkWhileMuted: false,
  });
  window.tutti.conference = conference;
  guardUnnamedRoomEvents(conference);
  const C = events.conference;
  // A tile view: every video at most the tiles' height (sent when the bridge channel opens).
  conference.setReceiverConstraints({
    lastN: -1,
    selectedEndpoints: [],
    onStageEndpoints: [],
    defaultConstraints: { maxHeight: receiveHeight },
    constraints: {},
    ...(assumedBandwidth ? { assumedBandwidthBps: assumedBandwidth } : {}),
  });

  const localTile = tileFor('local', displayName, true);
  for (const track of tracks) {
    attachTrack(localTile, track);
    conference.addTrack(track);
  }

  const focusTimer = setTimeout(() => {
    showError('The conference focus did not answer: nobody can join this room right now.');
    setStatus('Waiting for the conference focus…', 'failed');
  }, FOCUS_PATIENCE_MS);
  let mediaTimer = null;

  conference.on(C.CONFERENCE_JOINED, () => {
    clearTimeout(focusTimer);
    clearError();
    setStatus(`In room “${roomName}”; setting up media…`, 'joined');
    mediaTimer = setTimeout(() => {
      showError('Media could not be set up with the bridge (no connection after 15 s).');
      setStatus('Media failed.', 'failed');
    }, MEDIA_PATIENCE_MS);
  });
  conference.on(C.CONNECTION_ESTABLISHED, () => {
    clearTimeout(mediaTimer);
    clearError();
    setStatus(`In room “${roomName}” as ${displayName}.`, 'connected');
  });
  // lib-jitsi-meet reports CONNECTION_RESTORED only if ICE comes back while no renegotiation
  // is under way; when a source update from the focus lands at that moment the event never
  // comes, so while the notice shows the page also looks at the ICE state itself.
  let interruption = null;
  const restored = () => {
    clearInterval(interruption);
    interruption = null;
    clearError();
  };
  conference.on(C.CONNECTION_INTERRUPTED, () => {
    showError('The media connection to the bridge was interrupted; reconnecting…');
    clearInterval(interruption);
    interruption = setInterval(() => {
      const ice = conference.jvbJingleSession?.getIceConnectionState();
      if (ice === 'connected' || ice === 'completed') {
        restored();
      }
    }, INTERRUPTION_CHECK_MS);
  });
  conference.on(C.CONNECTION_RESTORED, restored);
  conference.on(C.CONFERENCE_LEFT, () => clearInterval(interruption));
  conference.on(C.DATA_CHANNEL_OPENED, () => note('bridge-channel-open'));
  // The bridge names the dominant speaker: its tile is marked.
  conference.on(C.DOMINANT_SPEAKER_CHANGED, (id, previous) => {
    note('dominant-speaker', { id, previous });
    for (const tile of page.tiles.querySelectorAll('.tile')) {
      const tileId = tile.classList.contains('local') ? conference.myUserId() : tile.dataset.id;
      tile.classList.toggle('dominant', tileId === id);
    }
  });
  conference.on(C.ENDPOINT_MESSAGE_RECEIVED, (participant, payload) => {
    note('endpoint-message', { from: participant.getId(), payload });
  });
  conference.on(C.CONFERENCE_FAILED, (error, detail) => {
    clearTimeout(focusTimer);
    clearTimeout(mediaTimer);
    const why = error === errors.conference.ICE_FAILED
      ? 'media could not reach the bridge (ICE failed)'
      : error === errors.conference.VIDEOBRIDGE_NOT_AVAILABLE
        ? 'no media bridge is available; the focus keeps trying'
        : error === errors.conference.FOCUS_LEFT || error === errors.conference.FOCUS_DISCONNECTED
          ? 'the conference focus left'
          : `${error}${detail ? ` (${detail})` : ''}`;
    showError(`The conference failed: ${why}.`);
    setStatus('Conference failed.', 'failed');
  });
  conference.on(C.CONFERENCE_ERROR, (error) => showError(`Conference error: ${error}.`));
  conference.on(C.USER_JOINED, (id, user) => tileFor(id, user.getDisplayName()));
  conference.on(C.USER_LEFT, (id) => removeTile(id));
  conference.on(C.DISPLAY_NAME_CHANGED, (id, name) => tileFor(id, name));
  conference.on(C.TRACK_ADDED, (track) => {
    if (track.isLocal()) {
      return;
    }
    const id = track.getParticipantId();
    const participant = conference.getParticipantById(id);
    attachTrack(tileFor(id, participant ? participant.getDisplayName() : undefined), track);
  });
  conference.on(C.TRACK_REMOVED, (track) => {
    if (track.isLocal()) {
      return;
    }
    const tile = page.tiles.querySelector(`.tile[data-id="${CSS.escape(track.getParticipantId())}"]`);
    if (tile) {
      detachTrack(tile, track);
    }
  });
  conference.on(C.TRACK_AUDIO_LEVEL_CHANGED, (id, level) => {
    const tile = id === conference.myUserId()
      ? page.tiles.querySelector('.tile.local')
      : page.tiles.querySelector(`.tile[data-id="${CSS.escape(id)}"]`);
    if (tile) {
      const speaking = level > SPEAKING_LEVEL;
      if (speaking && !tile.classList.contains('speaking')) {
        note('speaking', { id: tile.dataset.id, name: tile.dataset.name });
      }
      tile.classList.toggle('speaking', speaking);
    }
  });

  conference.setDisplayName(displayName);
  conference.join();
  page.leave.hidden = false;
}

/**
 * lib-jitsi-meet 2.6726 (this build) reads its XMPP event names in several modules through a
 * CommonJS require of an ES module, so there they are all `undefined`: among others, the focus
 * leaving the room is emitted on the room under `undefined` (moderator.js), which runs every
 * listener registered under `undefined` with the wrong arguments — ConnectionQuality's throws,
 * and Strophe then drops its MUC presence handler for good: the page would see nobody leave
 * any more. An emit under `undefined` is therefore kept from throwing (the failure is logged).
 */
function guardUnnamedRoomEvents(conference) {
  const emitter = conference.room?.eventEmitter;
  if (!emitter) {
    return;
  }
  const emit = emitter.emit.bind(emitter);
  emitter.emit = (name, ...args) => {
    if (name !== undefined) {
      return emit(name, ...args);
    }
    try {
      return emit(name, ...args);
    } catch (error) {
      console.warn(`lib-jitsi-meet: a room event without a name failed: ${error.message}`);
      return true;
    }
  };
}

async function leave() {
  const { conference, connection, localTracks } = window.tutti;
  note('leave-clicked');
  window.tutti.state = 'leaving';
  page.leave.hidden = true;
  try {
    if (conference) {
      await conference.leave();
    }
  } finally {
    for (const track of localTracks) {
      track.dispose();
    }
    if (connection) {
      connection.disconnect();
    }
    Object.assign(window.tutti, { connection: null, conference: null, localTracks: [] });
    page.tiles.replaceChildren();
    page.join.disabled = false;
    setStatus('You left the room.', 'idle');
  }
}

JitsiMeetJS.init({});
JitsiMeetJS.setLogLevel(JitsiMeetJS.logLevels.WARN);

page.form.addEventListener('submit', (event) => {
  event.preventDefault();
  join(page.room.value.trim().toLowerCase(), page.name.value.trim()).catch((error) => {
    showError(`Could not join: ${error.message}.`);
    setStatus('Not connected.', 'failed');
    page.join.disabled = false;
  });
});
page.leave.addEventListener('click', () => {
  leave().catch((error) => showError(`Leaving failed: ${error.message}.`));
});

// ?room=…&name=… fills the form (links to a room); &autojoin=1 joins at once; &resolution=720
// and &fps=15 set the camera capture (default 360 lines at up to 30 fps; Chromium sends three
// simulcast layers from 960x540 up); &receive=720 the tallest video it asks for (default 360);
// &region=NAME says where the participant is; &transport=bosh connects over BOSH.
const query = new URLSearchParams(location.search);
page.room.value = query.get('room') || '';
page.name.value = query.get('name') || '';
if (query.get('autojoin') === '1' && page.form.checkValidity()) {
  page.form.requestSubmit();
}
