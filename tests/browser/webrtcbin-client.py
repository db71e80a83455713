#!/usr/bin/python3
"""A standards Jingle participant on GStreamer's webrtcbin (Debian's GStreamer 1.22), for the
browser tests (webrtcbin.test.mjs): XMPP over TCP written by hand (SASL ANONYMOUS, bind, MUC
join with caps whose disco#info lists the Jingle XEPs and nothing of Jitsi's), the focus's
plain-XEP offer mapped to SDP (one m-line per content, its name the MID), answered by webrtcbin,
the answer mapped back to a Jingle session-accept; content-add renegotiated, content-remove
recorded (its m-lines left as they were: see `on_jingle`).
It sends a test tone and test pattern and prints one JSON line a second: per received m-line
(MID), its kind and decoded buffers; per remote SSRC, the packets received and the key frames
asked for; the pipeline's state, the sender (cname) each remote stream's content names, the
Jingle requests the focus sent and, with --ring, its ring.

With --ring it calls the focus instead of answering the focus's offer: once in the room it rings
the focus's occupant JID (XEP-0353 `<propose>`) and, on the focus's `<proceed>`, sends a
`session-initiate` of its own (sid: the propose's id) with webrtcbin's offer; the focus's
session-accept is the answer, and its content-add / content-remove (the focus being the
responder: creator and senders 'responder') are renegotiated as offers of the focus's, as above.

    webrtcbin-client.py XMPP_HOST:PORT GUEST_DOMAIN ROOM_JID NICK [--ring]
"""

import json
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

NS = {
    "client": "jabber:client",
    "jingle": "urn:xmpp:jingle:1",
    "rtp": "urn:xmpp:jingle:apps:rtp:1",
    "ice": "urn:xmpp:jingle:transports:ice-udp:1",
    "dtls": "urn:xmpp:jingle:apps:dtls:0",
    "ssma": "urn:xmpp:jingle:apps:rtp:ssma:0",
    "group": "urn:xmpp:jingle:apps:grouping:0",
    "fb": "urn:xmpp:jingle:apps:rtp:rtcp-fb:0",
    "hdrext": "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0",
    "disco": "http://jabber.org/protocol/disco#info",
    "jmi": "urn:xmpp:jingle-message:0",
}
FEATURES = [
    NS["jingle"], NS["rtp"], NS["ice"], NS["dtls"], NS["group"], NS["fb"], NS["hdrext"],
    "urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:apps:rtp:video", NS["jmi"],
]
OPUS = "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"
VP8 = "application/x-rtp,media=video,encoding-name=VP8,payload=100,clock-rate=90000"


def q(name, ns):
    return f"{{{NS[ns]}}}{name}"


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Xmpp:
    """XMPP over TCP: one stanza at a time from an incremental parser."""

    def __init__(self, address, domain):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)))
        self.domain = domain
        self.next_id = 0
        self.lock = threading.Lock()

    def send(self, text):
        with self.lock:
            self.sock.sendall(text.encode())

    def open_stream(self):
        self.parser = ET.XMLPullParser(events=("start", "end"))
        self.depth = 0
        self.send(
            f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            f"xmlns:stream='http://etherx.jabber.org/streams' to='{self.domain}' version='1.0'>"
        )

    def stanzas(self):
        while True:
            for event, element in self.parser.read_events():
                if event == "start":
                    self.depth += 1
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        yield element
            data = self.sock.recv(65536)
            if not data:
                return
            self.parser.feed(data)

    def next(self):
        return next(self.stream)

    def login(self):
        self.open_stream()
        self.stream = self.stanzas()
        self.next()  # features
        self.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
        if not self.next().tag.endswith("success"):
            raise RuntimeError("SASL ANONYMOUS refused")
        self.open_stream()
        self.stream = self.stanzas()
        self.next()  # features
        self.send("<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        bound = self.next()
        self.jid = bound.find(".//{urn:ietf:params:xml:ns:xmpp-bind}jid").text

    def iq_set(self, to, payload):
        self.next_id += 1
        self.send(f"<iq type='set' to={quoteattr(to)} id='w{self.next_id}'>{payload}</iq>")


def directions(client_role):
    """XEP-0166 `senders` and SDP directions, for a client in `client_role` ('initiator' or
    'responder'): the focus's m-lines' direction of each `senders`, and the `senders` of each of
    the client's directions."""
    focus_role = "responder" if client_role == "initiator" else "initiator"
    focus = {"both": "sendrecv", focus_role: "sendonly", client_role: "recvonly", "none": "inactive"}
    client = {"sendrecv": "both", "sendonly": client_role, "recvonly": focus_role, "inactive": "none"}
    return focus, client


def focus_sdp(contents, version, client_role):
    """The focus's contents as SDP (its offer, or its answer to a client that initiated), one
    m-line per content, in the order they came; removed contents' too (see `on_jingle`)."""
    focus_directions, _ = directions(client_role)
    lines = ["v=0", f"o=- 1 {version} IN IP4 0.0.0.0", "s=-", "t=0 0",
             "a=group:BUNDLE " + " ".join(content.get("name") for content in contents)]
    for content in contents:
        description = content.find(q("description", "rtp"))
        transport = content.find(q("transport", "ice"))
        pts = description.findall(q("payload-type", "rtp"))
        lines.append(f"m={description.get('media')} 9 UDP/TLS/RTP/SAVPF {' '.join(p.get('id') for p in pts)}")
        lines += ["c=IN IP4 0.0.0.0", f"a=mid:{content.get('name')}"]
        lines += [f"a=ice-ufrag:{transport.get('ufrag')}", f"a=ice-pwd:{transport.get('pwd')}"]
        fingerprint = transport.find(q("fingerprint", "dtls"))
        lines += [f"a=fingerprint:{fingerprint.get('hash')} {fingerprint.text.strip()}",
                  f"a=setup:{fingerprint.get('setup') or 'actpass'}", "a=rtcp-mux"]
        senders = content.get("senders") or "both"
        lines.append("a=" + focus_directions[senders])
        for pt in pts:
            channels = f"/{pt.get('channels')}" if pt.get("channels") else ""
            lines.append(f"a=rtpmap:{pt.get('id')} {pt.get('name')}/{pt.get('clockrate')}{channels}")
            parameters = [f"{p.get('name')}={p.get('value')}" for p in pt.findall(q("parameter", "rtp"))]
            if parameters:
                lines.append(f"a=fmtp:{pt.get('id')} {';'.join(parameters)}")
            for fb in pt.findall(q("rtcp-fb", "fb")):
                subtype = f" {fb.get('subtype')}" if fb.get("subtype") else ""
                lines.append(f"a=rtcp-fb:{pt.get('id')} {fb.get('type')}{subtype}")
        for ext in description.findall(q("rtp-hdrext", "hdrext")):
            lines.append(f"a=extmap:{ext.get('id')} {ext.get('uri')}")
        for group in description.findall(q("ssrc-group", "ssma")):
            members = " ".join(s.get("ssrc") for s in group.findall(q("source", "ssma")))
            lines.append(f"a=ssrc-group:{group.get('semantics')} {members}")
        for source in description.findall(q("source", "ssma")):
            for parameter in source.findall(q("parameter", "ssma")):
                lines.append(f"a=ssrc:{source.get('ssrc')} {parameter.get('name')}:{parameter.get('value')}")
        for c in transport.findall(q("candidate", "ice")):
            lines.append(f"a=candidate:{c.get('foundation')} {c.get('component')} {c.get('protocol')} "
                         f"{c.get('priority')} {c.get('ip')} {c.get('port')} typ {c.get('type')}")
    return "\r\n".join(lines) + "\r\n"


def jingle_of(action, sdp, sid, party, names, client_role, creators):
    """The contents `names` of the client's SDP (its answer, or its offer) as a Jingle `action`
    (a session-initiate or session-accept with the BUNDLE group, or a content-accept); `party`
    is the jingle element's initiator or responder attribute, `creators` the creator of each
    content the focus created."""
    _, client_directions = directions(client_role)
    session, *sections = sdp.split("\r\nm=")
    contents = ""
    for section in sections:
        lines = ("m=" + section).split("\r\n")
        values = lambda prefix: [l[len(prefix):] for l in lines if l.startswith(prefix)]  # noqa: E731
        mid = values("a=mid:")[0]
        if mid not in names:
            continue
        media = lines[0].split(" ")[0][2:]
        direction = next(d for d in ("sendrecv", "sendonly", "recvonly", "inactive") if f"a={d}" in lines)
        description = ""
        for rtpmap in values("a=rtpmap:"):
            pt, codec = rtpmap.split(" ", 1)
            name, clock, *channels = codec.split("/")
            channel = f" channels='{channels[0]}'" if channels else ""
            # Its format parameters (XEP-0167) and RTCP feedback (XEP-0293) go with it. A
            # session-initiate without feedback is accepted without, and webrtcbin takes a
            # payload type's feedback from the first m-line of the BUNDLE with that payload
            # type: the calling client then sent no PLI for any stream the focus added on VP8's
            # payload type, and a page's video that reached it between key frames was never
            # decoded (Chromium sends key frames when asked; 2026-12-07).
            inner = ""
            for fmtp in values(f"a=fmtp:{pt} "):
                for parameter in filter(None, fmtp.split(";")):
                    key, _, value = parameter.strip().partition("=")
                    inner += f"<parameter name={quoteattr(key)} value={quoteattr(value)}/>"
            for fb in values(f"a=rtcp-fb:{pt} "):
                kind, *subtype = fb.split(" ", 1)
                sub = f" subtype={quoteattr(subtype[0])}" if subtype else ""
                inner += f"<rtcp-fb xmlns='{NS['fb']}' type={quoteattr(kind)}{sub}/>"
            description += f"<payload-type id='{pt}' name={quoteattr(name)} clockrate='{clock}'{channel}>{inner}</payload-type>"
        description += "<rtcp-mux/>"
        ssrcs = {}
        for line in values("a=ssrc:"):
            ssrc, attribute = line.split(" ", 1)
            key, _, value = attribute.partition(":")
            if key in ("cname", "msid"):
                ssrcs.setdefault(ssrc, []).append(f"<parameter name='{key}' value={quoteattr(value)}/>")
        for ssrc, parameters in ssrcs.items():
            description += f"<source xmlns='{NS['ssma']}' ssrc='{ssrc}'>{''.join(parameters)}</source>"
        fingerprint = (values("a=fingerprint:") or [l[len("a=fingerprint:"):] for l in session.split("\r\n")
                                                    if l.startswith("a=fingerprint:")])[0].split(" ")
        setup = (values("a=setup:") or ["active"])[0]
        candidates = ""
        for i, line in enumerate(values("a=candidate:")):
            f, component, protocol, priority, ip, port, _, kind, *_ = line.split(" ")
            candidates += (f"<candidate foundation='{f}' component='{component}' protocol='{protocol.lower()}' "
                           f"priority='{priority}' ip='{ip}' port='{port}' type='{kind}' generation='0' "
                           f"id='c{i}' network='0'/>")
        transport = (f"<transport xmlns='{NS['ice']}' ufrag={quoteattr(values('a=ice-ufrag:')[0])} "
                     f"pwd={quoteattr(values('a=ice-pwd:')[0])}><fingerprint xmlns='{NS['dtls']}' "
                     f"hash='{fingerprint[0]}' setup='{setup}'>{fingerprint[1]}</fingerprint>{candidates}</transport>")
        contents += (f"<content creator='{creators.get(mid, 'initiator')}' name={quoteattr(mid)} "
                     f"senders='{client_directions[direction]}'><description xmlns='{NS['rtp']}' "
                     f"media='{media}'>{description}</description>{transport}</content>")
    group = ""
    if action in ("session-initiate", "session-accept"):
        members = "".join(f"<content name={quoteattr(n)}/>" for n in names)
        group = f"<group xmlns='{NS['group']}' semantics='BUNDLE'>{members}</group>"
    return (f"<jingle xmlns='{NS['jingle']}' action='{action}' sid={quoteattr(sid)} "
            f"{party}>{group}{contents}</jingle>")


class Participant:
    def __init__(self, xmpp, room, nick, ring):
        self.xmpp, self.room, self.nick = xmpp, room, nick
        # Its role in the session: the initiator when it calls the focus (--ring).
        self.client_role = "initiator" if ring else "responder"
        self.decoded = {}
        self.jingles = []
        # The sender (cname) of each remote stream's content, and the creator of each content
        # the focus created, by content name (MID).
        self.owners = {}
        self.creators = {}
        self.ring = None
        self.sid = None
        # Every content of the session, removed ones included, in the order they came.
        self.contents = []
        self.version = 1
        # It sends one VP8 layer at a fixed rate and does not adapt to the bridge's feedback,
        # so both rates are kept low (Opus 16 kbit/s, VP8 about 100): on a starved machine a
        # page's bandwidth estimate fell to 90-320 kbit/s, and at the encoders' defaults (64
        # and 256 kbit/s) the bridge had no room for the client's video towards it.
        self.pipe = Gst.parse_launch(
            "webrtcbin name=w bundle-policy=max-bundle "
            f"audiotestsrc is-live=true wave=ticks ! opusenc bitrate=16000 ! rtpopuspay pt=111 ! {OPUS} ! w. "
            "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 ! "
            f"vp8enc deadline=1 keyframe-max-dist=30 target-bitrate=100000 ! rtpvp8pay pt=100 ! {VP8} ! w.")
        self.w = self.pipe.get_by_name("w")
        self.w.connect("on-new-transceiver", self.on_new_transceiver)
        self.w.connect("pad-added", self.on_pad)
        self.candidates = []
        self.w.connect("on-ice-candidate", lambda _w, _mline, candidate: self.candidates.append(candidate))
        self.pipe.set_state(Gst.State.PLAYING)

    def on_new_transceiver(self, _w, transceiver):
        audio = transceiver.get_property("kind") == GstWebRTC.WebRTCKind.AUDIO
        transceiver.set_property("codec-preferences", Gst.Caps.from_string(OPUS if audio else VP8))

    def on_pad(self, _w, pad):
        """A received stream: depayloaded, decoded and counted, in a chain of elements that
        all change state at once (no decodebin: it completes its change to PAUSED only once it
        has found its stream's type, and one added to the playing pipeline took the whole
        pipeline back to PAUSED until then — a video waiting for its first key frame kept the
        calling client's pipeline there with nothing decoded, 'decodebin3:ready/paused' among
        the elements its report named, 2026-12-06)."""
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        transceiver = pad.get_property("transceiver")
        mid = transceiver.get_property("mid")
        # Each transceiver was given one codec (on_new_transceiver): Opus or VP8.
        audio = transceiver.get_property("kind") == GstWebRTC.WebRTCKind.AUDIO
        names = ("rtpopusdepay", "opusdec") if audio else ("rtpvp8depay", "vp8dec")
        elements = [Gst.ElementFactory.make(name) for name in names] + [self.counter(mid, audio)]
        for element in elements:
            self.ask_for_key_frames(element)
            self.pipe.add(element)
        for upstream, downstream in zip(elements, elements[1:]):
            upstream.link(downstream)
        for element in reversed(elements):
            element.sync_state_with_parent()
        pad.link(elements[0].get_static_pad("sink"))

    @staticmethod
    def ask_for_key_frames(element):
        """A VP8 stream that starts between key frames (a content added mid-call, the m-lines
        renegotiated) or loses a packet is not decodable until the next key frame: the
        depayloader and the decoder ask for one at once (a PLI, through webrtcbin's RTP
        session, which the bridge passes to the sender), as browsers do, instead of waiting for
        the sender's periodic one."""
        factory = element.get_factory().get_name() if element.get_factory() else ""
        if factory == "rtpvp8depay":
            element.set_property("request-keyframe", True)
            element.set_property("wait-for-keyframe", True)
        elif factory == "vp8dec":
            element.set_property("automatic-request-sync-points", True)
            element.set_property("min-force-key-unit-interval", 500 * Gst.MSECOND)

    def counter(self, mid, audio):
        """A sink counting the stream's decoded buffers. It neither syncs nor prerolls (`async`
        off: an async sink added to a playing pipeline takes it back to PAUSED until it
        prerolls)."""
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("signal-handoffs", True)
        sink.set_property("sync", False)
        sink.set_property("async", False)
        self.decoded[mid] = {"kind": "audio" if audio else "video", "buffers": 0}
        sink.connect("handoff", lambda *_: self.decoded[mid].__setitem__("buffers", self.decoded[mid]["buffers"] + 1))
        return sink

    def stats(self, name, fields):
        """The `fields` of webrtcbin's statistics of one kind (`inbound-rtp`, `outbound-rtp`),
        by SSRC; read while the promise's reply, which owns them, is held."""
        got = Gst.Promise.new()
        self.w.emit("get-stats", None, got)
        got.wait()
        stats, found = got.get_reply(), {}

        def each(_field, value, *_):
            if isinstance(value, Gst.Structure) and value.get_name() == name:
                found[str(value.get_value("ssrc"))] = {field: value.get_value(field) or 0 for field in fields}
            return True

        if stats is not None:
            stats.foreach(each, None)
        return found

    def received(self):
        """Per remote SSRC, webrtcbin's count of packets received and of key frames it asked
        for (PLI and FIR sent): a video stuck waiting for a key frame shows as packets rising
        while its decoded buffers do not."""
        return {ssrc: {"packets": value["packets-received"],
                       "key_frame_requests": value["pli-count"] + value["fir-count"]}
                for ssrc, value in self.stats("inbound-rtp", ("packets-received", "pli-count", "fir-count")).items()}

    def sent(self):
        """Per SSRC it sends, webrtcbin's count of packets sent: set against the SSRCs its
        Jingle signalled (logged when sent), it shows a stream sent under another SSRC."""
        return {ssrc: value["packets-sent"] for ssrc, value in self.stats("outbound-rtp", ("packets-sent",)).items()}

    def behind(self):
        """The elements of the pipeline that are not PLAYING (state/pending)."""
        elements, found = self.pipe.iterate_recurse(), []
        while True:
            result, element = elements.next()
            if result != Gst.IteratorResult.OK:
                return found
            _, current, pending = element.get_state(0)
            if current != Gst.State.PLAYING:
                found.append(f"{element.get_name()}:{current.value_nick}/{pending.value_nick}")

    def ring_focus(self):
        """XEP-0353: rings the focus's occupant JID (a `<propose>` whose id is the sid to be)."""
        self.ring = {"propose": f"{self.nick}-{int(time.time() * 1000)}", "proceed": None}
        descriptions = "".join(f"<description xmlns='{NS['rtp']}' media='{media}'/>" for media in ("audio", "video"))
        self.xmpp.send(f"<message to={quoteattr(self.room + '/focus')} type='chat'>"
                       f"<propose xmlns='{NS['jmi']}' id={quoteattr(self.ring['propose'])}>{descriptions}</propose></message>")

    def on_proceed(self, sender, proceed_id):
        """The focus's `<proceed>`: the client's session-initiate, webrtcbin's offer."""
        if self.ring is None or proceed_id != self.ring["propose"] or self.sid is not None:
            return
        self.ring["proceed"] = proceed_id
        self.sid, self.focus = proceed_id, sender
        text = self.local_description("offer")
        names = [line[len("a=mid:"):] for line in text.split("\r\n") if line.startswith("a=mid:")]
        log("session-initiate :", names)
        self.send_local("session-initiate", text, names, f"initiator={quoteattr(self.xmpp.jid)}")

    def learn(self, contents):
        for content in contents:
            self.creators[content.get("name")] = content.get("creator") or "initiator"
            for parameter in content.iterfind(f"{q('description', 'rtp')}/{q('source', 'ssma')}/{q('parameter', 'ssma')}"):
                if parameter.get("name") == "cname":
                    self.owners[content.get("name")] = parameter.get("value")

    def on_jingle(self, action, sid, sender, jingle):
        """The focus's session-initiate (answered, or with --ring left for the client's own),
        session-accept (of the client's), content-add (the m-lines follow) or content-remove."""
        contents = jingle.findall(q("content", "jingle"))
        names = [c.get("name") for c in contents]
        reason = jingle.find(q("reason", "jingle"))
        self.jingles.append({
            "action": action, "sid": sid, "contents": names, "creators": [c.get("creator") for c in contents],
            "senders": [c.get("senders") for c in contents],
            "reason": [child.tag.split("}")[1] for child in reason] if reason is not None else None,
        })
        if action == "session-initiate":
            if self.client_role == "responder":
                self.sid, self.focus = sid, sender
                self.learn(contents)
                self.contents = list(contents)
                self.negotiate("session-accept", names)
            return
        if sid != self.sid:
            return
        self.learn(contents)
        if action == "session-accept":
            self.contents = list(contents)
            self.version += 1
            self.set_remote(GstWebRTC.WebRTCSDPType.ANSWER)
            log("session-accepted :", len(self.contents), "m-lines")
        elif action == "content-add":
            self.contents += contents
            self.negotiate("content-accept", names)
        # A content-remove is not renegotiated: its m-lines stay as they were, and no media
        # comes on them any more. webrtcbin 1.22 takes no rejected m-line (port 0) nor a new
        # MID in an old one, and renegotiating the removed ones as inactive stopped the client
        # receiving anything in about 1 run in 25 (2026-12-07: its socket's receive queue full,
        # 4,524 datagrams dropped, while the bridge went on sending; libnice no longer read it).

    def set_remote(self, kind):
        text = focus_sdp(self.contents, self.version, self.client_role)
        _, sdp = GstSdp.SDPMessage.new_from_text(text)
        description = GstWebRTC.WebRTCSessionDescription.new(kind, sdp)
        remote_set = Gst.Promise.new()
        self.w.emit("set-remote-description", description, remote_set)
        remote_set.wait()
        reply = remote_set.get_reply()
        if reply is not None and reply.has_field("error"):
            raise RuntimeError(f"webrtcbin refused the focus's description: {reply.to_string()}")

    def local_description(self, kind):
        """webrtcbin's offer or answer (`kind`), set as its local description: its SDP text."""
        made = Gst.Promise.new()
        self.w.emit(f"create-{kind}", None, made)
        made.wait()
        # The description belongs to the promise's reply: both are kept while it is used.
        reply = made.get_reply()
        description = reply.get_value(kind)
        if description is None:
            raise RuntimeError(f"webrtcbin made no {kind}: {reply.to_string()}")
        text = description.sdp.as_text().replace("\r\n", "\n").replace("\n", "\r\n")
        local_set = Gst.Promise.new()
        self.w.emit("set-local-description", description, local_set)
        local_set.wait()
        return text

    def negotiate(self, action, names):
        """Offers the session's m-lines to webrtcbin; sends its answer's `names` as `action`."""
        self.version += 1
        self.set_remote(GstWebRTC.WebRTCSDPType.OFFER)
        text = self.local_description("answer")
        log(action, ":", text.count("\r\nm="), "m-lines")
        party = f"responder={quoteattr(self.xmpp.jid)}" if self.client_role == "responder" else ""
        self.send_local(action, text, names, party)

    def send_local(self, action, text, names, party):
        """Sends the contents `names` of the client's SDP `text` as `action`, with the ICE
        candidates gathered by then (up to 5 s)."""
        deadline = time.time() + 5
        while (self.w.get_property("ice-gathering-state") != GstWebRTC.WebRTCICEGatheringState.COMPLETE
               and time.time() < deadline):
            time.sleep(0.05)
        # The candidates gathered (trickled by webrtcbin) belong to the one BUNDLEd transport.
        lines = "".join(f"a={c}\r\n" for c in self.candidates)
        local = text.replace("\r\na=mid:", "\r\n" + lines + "a=mid:")
        signalled = {}
        for section in text.split("\r\nm=")[1:]:
            mid = next(l[len("a=mid:"):] for l in section.split("\r\n") if l.startswith("a=mid:"))
            ssrcs = sorted({l[len("a=ssrc:"):].split(" ")[0] for l in section.split("\r\n") if l.startswith("a=ssrc:")})
            if mid in names and ssrcs:
                signalled[mid] = ssrcs
        log(action, "signals SSRCs", json.dumps(signalled))
        self.xmpp.iq_set(self.focus, jingle_of(action, local, self.sid, party, names, self.client_role, self.creators))


def load_bindings():
    """Loads every GObject binding the client uses, in the main thread before any pipeline
    runs. PyGObject loads a namespace's classes and constants on first use, and that is not
    thread-safe: webrtcbin's streaming threads calling `on_pad` at once for several new
    streams raised "type object 'PadDirection' has no attribute 'SRC'" (2026-12-06), the
    streams left unlinked."""
    for namespace, names in ((Gst, ("Caps", "ElementFactory", "IteratorResult", "MSECOND", "PadDirection",
                                    "Promise", "State")),
                             (GstSdp, ("SDPMessage",)),
                             (GstWebRTC, ("WebRTCICEGatheringState", "WebRTCKind", "WebRTCSDPType",
                                          "WebRTCSessionDescription"))):
        for name in names:
            getattr(namespace, name)


def main():
    address, domain, room, nick = sys.argv[1:5]
    ring = "--ring" in sys.argv[5:]
    Gst.init(None)
    load_bindings()
    xmpp = Xmpp(address, domain)
    xmpp.login()
    participant = Participant(xmpp, room, nick, ring)
    own = f"{room}/{nick}"
    xmpp.send(f"<presence to={quoteattr(own)}><x xmlns='http://jabber.org/protocol/muc'/>"
              "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='urn:tutti:webrtcbin' ver='w1'/></presence>")
    started = time.time()

    def report():
        while True:
            time.sleep(1)
            _, current, pending = participant.pipe.get_state(0)
            # Below PLAYING: which elements hold it there.
            behind = [] if current == Gst.State.PLAYING else participant.behind()
            received = participant.received()
            print(json.dumps({"seconds": round(time.time() - started, 1), "decoded": participant.decoded,
                              "state": f"{current.value_nick}/{pending.value_nick}", "behind": behind,
                              "connection": participant.w.get_property("connection-state").value_nick,
                              "ice": participant.w.get_property("ice-connection-state").value_nick,
                              "received": received, "sent": participant.sent(), "owners": participant.owners,
                              "jingles": participant.jingles,
                              "ring": participant.ring}), flush=True)

    threading.Thread(target=report, daemon=True).start()
    threading.Thread(target=GLib.MainLoop().run, daemon=True).start()
    for stanza in xmpp.stream:
        if stanza.tag == q("presence", "client"):
            # In the room: with --ring, it calls the focus at once.
            if ring and stanza.get("from") == own and participant.ring is None:
                participant.ring_focus()
            continue
        if stanza.tag == q("message", "client"):
            proceed = stanza.find(q("proceed", "jmi"))
            if proceed is not None:
                log("proceed", proceed.get("id"))
                participant.on_proceed(stanza.get("from"), proceed.get("id"))
            continue
        if stanza.tag != q("iq", "client"):
            continue
        kind, sender, iq_id = stanza.get("type"), stanza.get("from"), stanza.get("id")
        query = stanza.find(q("query", "disco"))
        if kind == "get" and query is not None:
            features = "".join(f"<feature var='{f}'/>" for f in FEATURES)
            xmpp.send(f"<iq type='result' to={quoteattr(sender)} id={quoteattr(iq_id)}>"
                      f"<query xmlns='{NS['disco']}' node={quoteattr(query.get('node') or '')}>"
                      f"<identity category='client' type='pc'/>{features}</query></iq>")
            continue
        if kind == "error":
            log("error", ET.tostring(stanza, encoding="unicode"))
            continue
        jingle = stanza.find(q("jingle", "jingle"))
        if kind != "set" or jingle is None:
            continue
        xmpp.send(f"<iq type='result' to={quoteattr(sender)} id={quoteattr(iq_id)}/>")
        action = jingle.get("action")
        log("jingle", action, [c.get("name") for c in jingle.findall(q("content", "jingle"))])
        participant.on_jingle(action, jingle.get("sid"), sender, jingle)


if __name__ == "__main__":
    main()
