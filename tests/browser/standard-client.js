// A standards Jingle client in a page, for the browser tests: XMPP over the WebSocket written by
// hand (RFC 7395, SASL ANONYMOUS, bind, MUC), caps whose disco#info lists the Jingle XEPs and
// nothing of Jitsi's, and XEP-0166/0167/0176/0320/0338/0339 Jingle mapped to and from SDP for
// the page's RTCPeerConnection, one m-line per content (its name the MID), as desktop Jingle
// clients do, without the remote streams' SSRCs (what it receives is routed by MID alone); a
// removed content's m-line is recycled for the next content of its media (JSEP), so the session
// description does not grow with joins and leaves. With `{ sources: false }` it signals no
// XEP-0339 source of what it sends either (the bridge routes it by the MIDs of its packets).
// Nothing of lib-jitsi-meet. Injected into a page by standard-client.test.mjs;
// window.standardClient is its handle.
'use strict';

(() => {
  const NS = {
    jingle: 'urn:xmpp:jingle:1',
    rtp: 'urn:xmpp:jingle:apps:rtp:1',
    ice: 'urn:xmpp:jingle:transports:ice-udp:1',
    dtls: 'urn:xmpp:jingle:apps:dtls:0',
    ssma: 'urn:xmpp:jingle:apps:rtp:ssma:0',
    group: 'urn:xmpp:jingle:apps:grouping:0',
    fb: 'urn:xmpp:jingle:apps:rtp:rtcp-fb:0',
    hdrext: 'urn:xmpp:jingle:apps:rtp:rtp-hdrext:0',
  };
  const FEATURES = [
    'urn:xmpp:jingle:1', NS.rtp, NS.ice, NS.dtls, NS.group, NS.fb, NS.hdrext,
    'urn:xmpp:jingle:apps:rtp:audio', 'urn:xmpp:jingle:apps:rtp:video',
  ];
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;');
  const children = (el, name, ns) => [...el.children].filter((c) => c.localName === name && (!ns || c.namespaceURI === ns));
  const child = (el, name, ns) => children(el, name, ns)[0];

  class Client {
    constructor(url, domain, { sources = true } = {}) {
      this.url = url;
      this.domain = domain;
      // Whether its own contents carry XEP-0339 sources (its SSRCs).
      this.signalsSources = sources;
      this.log = [];
      this.jingles = [];
      this.nextId = 0;
      this.waiting = new Map();
      // The m-lines: each a content (a Jingle element) and whether it was removed.
      this.slots = [];
      this.version = 1;
    }

    send(xml) {
      this.log.push(`> ${xml.slice(0, 300)}`);
      this.ws.send(xml);
    }

    iq(type, to, payload) {
      const id = `s${this.nextId += 1}`;
      const answer = new Promise((resolve) => this.waiting.set(id, resolve));
      this.send(`<iq xmlns='jabber:client' type='${type}' to='${esc(to)}' id='${id}'>${payload}</iq>`);
      return answer;
    }

    async connect() {
      this.ws = new WebSocket(this.url, 'xmpp');
      this.frames = [];
      this.frameWaiters = [];
      this.ws.onmessage = (event) => this.onFrame(event.data);
      await new Promise((resolve, reject) => { this.ws.onopen = resolve; this.ws.onerror = reject; });
      const open = `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='${this.domain}' version='1.0'/>`;
      this.send(open);
      await this.nextFrame('features');
      this.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>");
      const success = await this.nextFrame('success');
      if (!success) throw new Error('SASL ANONYMOUS refused');
      this.send(open);
      await this.nextFrame('features');
      this.streamReady = true;
      const bound = await this.iq('set', this.domain, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>");
      this.jid = bound.getElementsByTagName('jid')[0].textContent;
    }

    nextFrame(name) {
      return new Promise((resolve) => this.frameWaiters.push({ name, resolve }));
    }

    onFrame(text) {
      this.log.push(`< ${text.slice(0, 300)}`);
      const el = new DOMParser().parseFromString(text, 'text/xml').documentElement;
      const waiter = this.frameWaiters.findIndex((w) => w.name === el.localName);
      if (waiter >= 0) {
        this.frameWaiters.splice(waiter, 1)[0].resolve(el);
        return;
      }
      if (el.localName === 'iq') {
        this.onIq(el).catch((error) => this.log.push(`! ${error.stack}`));
      }
    }

    async onIq(iq) {
      const type = iq.getAttribute('type');
      const id = iq.getAttribute('id');
      const from = iq.getAttribute('from');
      if ((type === 'result' || type === 'error') && this.waiting.has(id)) {
        this.waiting.get(id)(iq);
        this.waiting.delete(id);
        return;
      }
      const query = child(iq, 'query', 'http://jabber.org/protocol/disco#info');
      if (type === 'get' && query) {
        const features = FEATURES.map((f) => `<feature var='${f}'/>`).join('');
        this.send(`<iq xmlns='jabber:client' type='result' to='${esc(from)}' id='${esc(id)}'><query xmlns='http://jabber.org/protocol/disco#info' node='${esc(query.getAttribute('node') ?? '')}'><identity category='client' type='pc' name='standards client'/>${features}</query></iq>`);
        return;
      }
      const jingle = child(iq, 'jingle', NS.jingle);
      if (type !== 'set' || !jingle) return;
      this.send(`<iq xmlns='jabber:client' type='result' to='${esc(from)}' id='${esc(id)}'/>`);
      this.focus = from;
      const action = jingle.getAttribute('action');
      this.jingles.push({ action, contents: children(jingle, 'content', NS.jingle).map((c) => c.getAttribute('name')), at: Date.now() });
      await (this.queue = (this.queue ?? Promise.resolve()).then(() => this.onJingle(action, jingle)));
    }

    async join(room, nick) {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 360 } });
      await this.connect();
      this.send(`<presence xmlns='jabber:client' to='${esc(room)}/${esc(nick)}'><x xmlns='http://jabber.org/protocol/muc'/><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='urn:tutti:standard-client' ver='standard-1'/></presence>`);
    }

    async onJingle(action, jingle) {
      if (action === 'session-initiate') {
        this.sid = jingle.getAttribute('sid');
        this.slots = children(jingle, 'content', NS.jingle).map((content) => ({ content, removed: false }));
        this.pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', rtcpMuxPolicy: 'require' });
        // Remote audio is played, as a client does (Chromium decodes what it plays out).
        this.pc.addEventListener('track', ({ track }) => {
          if (track.kind === 'audio') {
            const audio = new Audio();
            audio.srcObject = new MediaStream([track]);
            audio.play().catch((error) => this.log.push(`! ${error}`));
          }
        });
        await this.negotiate();
        for (const transceiver of this.pc.getTransceivers()) {
          const own = { audio: this.stream.getAudioTracks()[0], video: this.stream.getVideoTracks()[0] }[transceiver.mid];
          if (own) {
            await transceiver.sender.replaceTrack(own);
            transceiver.sender.setStreams(this.stream);
            transceiver.direction = 'sendonly';
          }
        }
        const answer = await this.answer();
        this.accept = this.jingleOf('session-accept', answer, this.slots.map((slot) => slot.content.getAttribute('name')));
        await this.iq('set', this.focus, this.accept);
      } else if (action === 'content-add') {
        const added = children(jingle, 'content', NS.jingle);
        for (const content of added) {
          const media = child(content, 'description', NS.rtp).getAttribute('media');
          const free = this.slots.find((slot) => slot.removed && child(slot.content, 'description', NS.rtp).getAttribute('media') === media);
          if (free) {
            Object.assign(free, { content, removed: false });
          } else {
            this.slots.push({ content, removed: false });
          }
        }
        await this.negotiate();
        const answer = await this.answer();
        await this.iq('set', this.focus, this.jingleOf('content-accept', answer, added.map((c) => c.getAttribute('name'))));
      } else if (action === 'content-remove') {
        const names = children(jingle, 'content', NS.jingle).map((content) => content.getAttribute('name'));
        for (const slot of this.slots) {
          slot.removed ||= names.includes(slot.content.getAttribute('name'));
        }
        await this.negotiate();
        await this.answer();
      }
    }

    async negotiate() {
      await this.pc.setRemoteDescription({ type: 'offer', sdp: this.offerSdp() });
    }

    async answer() {
      await this.pc.setLocalDescription(await this.pc.createAnswer());
      if (this.pc.iceGatheringState !== 'complete') {
        await new Promise((resolve) => {
          const done = () => this.pc.iceGatheringState === 'complete' && resolve();
          this.pc.addEventListener('icegatheringstatechange', done);
          setTimeout(resolve, 3000);
        });
      }
      return this.pc.localDescription.sdp;
    }

    /** The focus's contents as an SDP offer: one m-line per content, the content's name its MID. */
    offerSdp() {
      const live = this.slots.filter((slot) => !slot.removed).map((slot) => slot.content.getAttribute('name'));
      const lines = ['v=0', `o=- 4611731400430051336 ${this.version += 1} IN IP4 0.0.0.0`, 's=-', 't=0 0',
        `a=group:BUNDLE ${live.join(' ')}`, 'a=msid-semantic: WMS *'];
      for (const { content, removed } of this.slots) {
        const name = content.getAttribute('name');
        const description = child(content, 'description', NS.rtp);
        const transport = child(content, 'transport', NS.ice);
        const payloadTypes = children(description, 'payload-type', NS.rtp);
        lines.push(`m=${description.getAttribute('media')} ${removed ? 0 : 9} UDP/TLS/RTP/SAVPF ${payloadTypes.map((p) => p.getAttribute('id')).join(' ')}`);
        lines.push('c=IN IP4 0.0.0.0', `a=mid:${name}`);
        if (removed) {
          lines.push('a=inactive');
          for (const p of payloadTypes) lines.push(`a=rtpmap:${p.getAttribute('id')} ${p.getAttribute('name')}/${p.getAttribute('clockrate')}${p.getAttribute('channels') ? `/${p.getAttribute('channels')}` : ''}`);
          continue;
        }
        lines.push(`a=ice-ufrag:${transport.getAttribute('ufrag')}`, `a=ice-pwd:${transport.getAttribute('pwd')}`);
        const fingerprint = child(transport, 'fingerprint', NS.dtls);
        lines.push(`a=fingerprint:${fingerprint.getAttribute('hash')} ${fingerprint.textContent.trim()}`, `a=setup:${fingerprint.getAttribute('setup') ?? 'actpass'}`);
        lines.push('a=rtcp-mux');
        const senders = content.getAttribute('senders') ?? 'both';
        lines.push(`a=${{ both: 'sendrecv', initiator: 'sendonly', responder: 'recvonly', none: 'inactive' }[senders]}`);
        for (const p of payloadTypes) {
          const id = p.getAttribute('id');
          lines.push(`a=rtpmap:${id} ${p.getAttribute('name')}/${p.getAttribute('clockrate')}${p.getAttribute('channels') ? `/${p.getAttribute('channels')}` : ''}`);
          const parameters = children(p, 'parameter', NS.rtp).map((q) => `${q.getAttribute('name')}=${q.getAttribute('value')}`);
          if (parameters.length) lines.push(`a=fmtp:${id} ${parameters.join(';')}`);
          for (const fb of children(p, 'rtcp-fb', NS.fb)) lines.push(`a=rtcp-fb:${id} ${fb.getAttribute('type')}${fb.getAttribute('subtype') ? ` ${fb.getAttribute('subtype')}` : ''}`);
        }
        for (const ext of children(description, 'rtp-hdrext', NS.hdrext)) lines.push(`a=extmap:${ext.getAttribute('id')} ${ext.getAttribute('uri')}`);
        // A remote stream's content: its msid as the m-line's, and no a=ssrc lines, so that
        // Chromium routes its packets by the MID the bridge writes into them (RFC 8843), as
        // clients that route by MID alone do.
        const msid = children(description, 'source', NS.ssma)
          .flatMap((source) => children(source, 'parameter', NS.ssma))
          .find((parameter) => parameter.getAttribute('name') === 'msid');
        if (msid) lines.push(`a=msid:${msid.getAttribute('value')}`);
        for (const c of children(transport, 'candidate', NS.ice)) {
          lines.push(`a=candidate:${c.getAttribute('foundation')} ${c.getAttribute('component')} ${c.getAttribute('protocol')} ${c.getAttribute('priority')} ${c.getAttribute('ip')} ${c.getAttribute('port')} typ ${c.getAttribute('type')}`);
        }
      }
      return `${lines.join('\r\n')}\r\n`;
    }

    /** The contents `names` of an SDP answer as a Jingle `action`. */
    jingleOf(action, sdp, names) {
      const [session, ...sections] = sdp.split(/\r\n(?=m=)/);
      const sessionFingerprint = /a=fingerprint:(\S+) (\S+)/.exec(session);
      let contents = '';
      for (const section of sections) {
        const lines = section.split('\r\n');
        const value = (prefix) => lines.find((l) => l.startsWith(prefix))?.slice(prefix.length);
        const mid = value('a=mid:');
        if (!names.includes(mid)) continue;
        const media = lines[0].split(' ')[0].slice(2);
        const direction = ['sendrecv', 'sendonly', 'recvonly', 'inactive'].find((d) => lines.includes(`a=${d}`));
        const senders = { sendrecv: 'both', sendonly: 'responder', recvonly: 'initiator', inactive: 'none' }[direction];
        let description = '';
        for (const line of lines.filter((l) => l.startsWith('a=rtpmap:'))) {
          const [, id, codec, clock, channels] = /a=rtpmap:(\d+) ([^/]+)\/(\d+)(?:\/(\d+))?/.exec(line);
          const fmtp = value(`a=fmtp:${id} `);
          const parameters = fmtp ? fmtp.split(';').map((kv) => { const [k, v] = kv.split('='); return `<parameter name='${esc(k.trim())}' value='${esc(v ?? '')}'/>`; }).join('') : '';
          const feedback = lines.filter((l) => l.startsWith(`a=rtcp-fb:${id} `)).map((l) => { const [type, subtype] = l.split(' ').slice(1); return `<rtcp-fb xmlns='${NS.fb}' type='${esc(type)}'${subtype ? ` subtype='${esc(subtype)}'` : ''}/>`; }).join('');
          description += `<payload-type id='${id}' name='${esc(codec)}' clockrate='${clock}'${channels ? ` channels='${channels}'` : ''}>${parameters}${feedback}</payload-type>`;
        }
        for (const line of lines.filter((l) => l.startsWith('a=extmap:'))) {
          const [, id, uri] = /a=extmap:(\d+)(?:\/\w+)? (\S+)/.exec(line);
          description += `<rtp-hdrext xmlns='${NS.hdrext}' id='${id}' uri='${esc(uri)}'/>`;
        }
        description += '<rtcp-mux/>';
        const ssrcs = new Map();
        const sourceLines = this.signalsSources ? lines : [];
        for (const line of sourceLines.filter((l) => l.startsWith('a=ssrc:'))) {
          const [, ssrc, key, val] = /a=ssrc:(\d+) ([^:]+)(?::(.*))?/.exec(line);
          if (!ssrcs.has(ssrc)) ssrcs.set(ssrc, []);
          if (key === 'cname' || key === 'msid') ssrcs.get(ssrc).push(`<parameter name='${key}' value='${esc(val)}'/>`);
        }
        // Chromium puts the msid on the m-line (a=msid) when the offer did, as this client's
        // does: each source gets it as XEP-0339 carries it.
        const msid = value('a=msid:');
        for (const [ssrc, parameters] of ssrcs) {
          if (msid && !parameters.some((p) => p.includes("name='msid'"))) parameters.push(`<parameter name='msid' value='${esc(msid)}'/>`);
          description += `<source xmlns='${NS.ssma}' ssrc='${ssrc}'>${parameters.join('')}</source>`;
        }
        for (const line of sourceLines.filter((l) => l.startsWith('a=ssrc-group:'))) {
          const [semantics, ...members] = line.slice('a=ssrc-group:'.length).split(' ');
          description += `<ssrc-group xmlns='${NS.ssma}' semantics='${semantics}'>${members.map((s) => `<source ssrc='${s}'/>`).join('')}</ssrc-group>`;
        }
        const fingerprint = /a=fingerprint:(\S+) (\S+)/.exec(section) ?? sessionFingerprint;
        const setup = value('a=setup:') ?? 'active';
        const candidates = lines.filter((l) => l.startsWith('a=candidate:')).map((line, i) => {
          const [foundation, component, protocol, priority, ip, port, , type] = line.slice('a=candidate:'.length).split(' ');
          return `<candidate foundation='${foundation}' component='${component}' protocol='${protocol.toLowerCase()}' priority='${priority}' ip='${ip}' port='${port}' type='${type}' generation='0' id='c${i}' network='0'/>`;
        }).join('');
        const transport = `<transport xmlns='${NS.ice}' ufrag='${esc(value('a=ice-ufrag:'))}' pwd='${esc(value('a=ice-pwd:'))}'><fingerprint xmlns='${NS.dtls}' hash='${fingerprint[1]}' setup='${setup}'>${fingerprint[2]}</fingerprint>${candidates}</transport>`;
        contents += `<content creator='initiator' name='${esc(mid)}' senders='${senders}'><description xmlns='${NS.rtp}' media='${media}'>${description}</description>${transport}</content>`;
      }
      const group = action === 'session-accept'
        ? `<group xmlns='${NS.group}' semantics='BUNDLE'>${names.map((n) => `<content name='${esc(n)}'/>`).join('')}</group>`
        : '';
      return `<jingle xmlns='${NS.jingle}' action='${action}' sid='${esc(this.sid)}' responder='${esc(this.jid)}'>${group}${contents}</jingle>`;
    }

    /** How many m-lines the session description has. */
    mLines() {
      return (this.pc?.remoteDescription?.sdp.match(/^m=/gm) ?? []).length;
    }

    /** Per MID: the transceiver's negotiated direction (`stopped` once its m-line is gone). */
    directions() {
      return Object.fromEntries((this.pc?.getTransceivers() ?? []).map((t) => [t.mid, t.currentDirection]));
    }

    /** Per MID: kind, SSRC, frames decoded and audio energy received (inbound RTP statistics). */
    async received() {
      if (!this.pc) return {};
      const stats = await this.pc.getStats();
      const byMid = {};
      for (const transceiver of this.pc.getTransceivers()) {
        const track = transceiver.receiver.track;
        for (const report of stats.values()) {
          if (report.type === 'inbound-rtp' && report.trackIdentifier === track.id) {
            byMid[transceiver.mid] = {
              kind: report.kind,
              mid: report.mid,
              ssrc: report.ssrc,
              framesDecoded: report.framesDecoded ?? 0,
              audioEnergy: report.totalAudioEnergy ?? 0,
              packets: report.packetsReceived,
            };
          }
        }
      }
      return byMid;
    }
  }

  window.standardClient = {
    async join(room, nick, options) {
      const client = new Client(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/xmpp-websocket`, window.TUTTI_CONFIG.guestDomain, options);
      window.standardClient.client = client;
      await client.join(room, nick);
    },
  };
})();
