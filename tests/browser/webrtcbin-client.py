#!/usr/bin/python3
"""A standards Jingle participant on GStreamer's webrtcbin (Debian's GStreamer 1.22), for the
browser tests (webrtcbin.test.mjs): XMPP over TCP written by hand (SASL ANONYMOUS, bind, MUC
join with caps whose disco#info lists the Jingle XEPs and nothing of Jitsi's), the focus's
plain-XEP offer mapped to SDP (one m-line per content, its name the MID), answered by webrtcbin,
the answer mapped back to a Jingle session-accept; content-add and content-remove renegotiated
(a removed content's m-line left inactive: webrtcbin 1.22 takes no rejected or recycled one). It sends a test tone
and test pattern and prints one JSON line a second: per received m-line (MID), its kind and
decoded buffers, and the Jingle requests the focus sent.

    webrtcbin-client.py XMPP_HOST:PORT GUEST_DOMAIN ROOM_JID NICK
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
}
FEATURES = [
    NS["jingle"], NS["rtp"], NS["ice"], NS["dtls"], NS["group"], NS["fb"], NS["hdrext"],
    "urn:xmpp:jingle:apps:rtp:audio", "urn:xmpp:jingle:apps:rtp:video",
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


def offer_sdp(slots, version):
    """The focus's contents as an SDP offer, one m-line per slot ([content, removed]). A removed
    content's m-line stays, inactive: webrtcbin 1.22 gives no answer to an offer that rejects an
    m-line it had (port 0), nor takes a new MID in an old m-line, so none is recycled."""
    lines = ["v=0", f"o=- 1 {version} IN IP4 0.0.0.0", "s=-", "t=0 0",
             "a=group:BUNDLE " + " ".join(content.get("name") for content, _ in slots)]
    for content, removed in slots:
        description = content.find(q("description", "rtp"))
        transport = content.find(q("transport", "ice"))
        pts = description.findall(q("payload-type", "rtp"))
        lines.append(f"m={description.get('media')} 9 UDP/TLS/RTP/SAVPF {' '.join(p.get('id') for p in pts)}")
        lines += ["c=IN IP4 0.0.0.0", f"a=mid:{content.get('name')}"]
        lines += [f"a=ice-ufrag:{transport.get('ufrag')}", f"a=ice-pwd:{transport.get('pwd')}"]
        fingerprint = transport.find(q("fingerprint", "dtls"))
        lines += [f"a=fingerprint:{fingerprint.get('hash')} {fingerprint.text.strip()}",
                  f"a=setup:{fingerprint.get('setup') or 'actpass'}", "a=rtcp-mux"]
        senders = "none" if removed else content.get("senders") or "both"
        lines.append("a=" + {"both": "sendrecv", "initiator": "sendonly",
                             "responder": "recvonly", "none": "inactive"}[senders])
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


def jingle_of(action, sdp, sid, responder, names):
    """The contents `names` of an SDP answer as a Jingle `action` (a session-accept with the
    BUNDLE group, or a content-accept)."""
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
        senders = {"sendrecv": "both", "sendonly": "responder", "recvonly": "initiator", "inactive": "none"}[direction]
        description = ""
        for rtpmap in values("a=rtpmap:"):
            pt, codec = rtpmap.split(" ", 1)
            name, clock, *channels = codec.split("/")
            channel = f" channels='{channels[0]}'" if channels else ""
            description += f"<payload-type id='{pt}' name={quoteattr(name)} clockrate='{clock}'{channel}/>"
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
        contents += (f"<content creator='initiator' name={quoteattr(mid)} senders='{senders}'>"
                     f"<description xmlns='{NS['rtp']}' media='{media}'>{description}</description>{transport}</content>")
    group = ""
    if action == "session-accept":
        members = "".join(f"<content name={quoteattr(n)}/>" for n in names)
        group = f"<group xmlns='{NS['group']}' semantics='BUNDLE'>{members}</group>"
    return (f"<jingle xmlns='{NS['jingle']}' action='{action}' sid={quoteattr(sid)} "
            f"responder={quoteattr(responder)}>{group}{contents}</jingle>")


class Participant:
    def __init__(self, xmpp, room, nick):
        self.xmpp, self.room, self.nick = xmpp, room, nick
        self.decoded = {}
        self.jingles = []
        self.slots = []
        self.version = 1
        self.pipe = Gst.parse_launch(
            "webrtcbin name=w bundle-policy=max-bundle "
            f"audiotestsrc is-live=true wave=ticks ! opusenc ! rtpopuspay pt=111 ! {OPUS} ! w. "
            f"videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay pt=100 ! {VP8} ! w.")
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
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        mid = pad.get_property("transceiver").get_property("mid")
        decode = Gst.ElementFactory.make("decodebin")
        self.pipe.add(decode)
        decode.connect("element-added", lambda _d, element: self.ask_for_key_frames(element))
        decode.connect("pad-added", lambda _d, p: self.on_decoded(p, mid))
        decode.sync_state_with_parent()
        pad.link(decode.get_static_pad("sink"))

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

    def on_decoded(self, pad, mid):
        sink = Gst.ElementFactory.make("fakesink")
        sink.set_property("signal-handoffs", True)
        sink.set_property("sync", False)
        kind = "video" if pad.query_caps(None).to_string().startswith("video") else "audio"
        self.decoded[mid] = {"kind": kind, "buffers": 0}
        sink.connect("handoff", lambda *_: self.decoded[mid].__setitem__("buffers", self.decoded[mid]["buffers"] + 1))
        self.pipe.add(sink)
        sink.sync_state_with_parent()
        pad.link(sink.get_static_pad("sink"))

    def on_jingle(self, action, sid, initiator, contents):
        """The focus's session-initiate, content-add or content-remove: the m-lines follow."""
        self.jingles.append({"action": action, "contents": [c.get("name") for c in contents]})
        if action == "session-initiate":
            self.sid, self.initiator = sid, initiator
            self.slots = [[content, False] for content in contents]
            self.negotiate("session-accept", [c.get("name") for c in contents])
        elif action == "content-add":
            self.slots += [[content, False] for content in contents]
            self.negotiate("content-accept", [c.get("name") for c in contents])
        elif action == "content-remove":
            names = [c.get("name") for c in contents]
            for slot in self.slots:
                slot[1] = slot[1] or slot[0].get("name") in names
            self.negotiate(None, [])

    def negotiate(self, action, names):
        """Offers the session's m-lines to webrtcbin; sends its answer's `names` as `action`."""
        self.version += 1
        _, sdp = GstSdp.SDPMessage.new_from_text(offer_sdp(self.slots, self.version))
        description = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.OFFER, sdp)
        remote_set = Gst.Promise.new()
        self.w.emit("set-remote-description", description, remote_set)
        remote_set.wait()
        # The answer belongs to the promise's reply: both are kept while it is used.
        answered = Gst.Promise.new()
        self.w.emit("create-answer", None, answered)
        answered.wait()
        reply = answered.get_reply()
        answer = reply.get_value("answer")
        if answer is None:
            raise RuntimeError(f"webrtcbin made no answer: {reply.to_string()}")
        text = answer.sdp.as_text().replace("\r\n", "\n").replace("\n", "\r\n")
        local_set = Gst.Promise.new()
        self.w.emit("set-local-description", answer, local_set)
        local_set.wait()
        log(action or "renegotiated", ":", text.count("\r\nm="), "m-lines")
        if action is None:
            return
        deadline = time.time() + 5
        while (self.w.get_property("ice-gathering-state") != GstWebRTC.WebRTCICEGatheringState.COMPLETE
               and time.time() < deadline):
            time.sleep(0.05)
        # The candidates gathered (trickled by webrtcbin) belong to the one BUNDLEd transport.
        lines = "".join(f"a={c}\r\n" for c in self.candidates)
        local = text.replace("\r\na=mid:", "\r\n" + lines + "a=mid:")
        self.xmpp.iq_set(self.initiator, jingle_of(action, local, self.sid, self.xmpp.jid, names))


def main():
    address, domain, room, nick = sys.argv[1:5]
    Gst.init(None)
    xmpp = Xmpp(address, domain)
    xmpp.login()
    participant = Participant(xmpp, room, nick)
    xmpp.send(f"<presence to={quoteattr(room + '/' + nick)}><x xmlns='http://jabber.org/protocol/muc'/>"
              "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='urn:tutti:webrtcbin' ver='w1'/></presence>")
    started = time.time()

    def report():
        while True:
            time.sleep(1)
            print(json.dumps({"seconds": round(time.time() - started, 1), "decoded": participant.decoded,
                              "jingles": participant.jingles}), flush=True)

    threading.Thread(target=report, daemon=True).start()
    threading.Thread(target=GLib.MainLoop().run, daemon=True).start()
    for stanza in xmpp.stream:
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
        jingle = stanza.find(q("jingle", "jingle"))
        if kind != "set" or jingle is None:
            continue
        xmpp.send(f"<iq type='result' to={quoteattr(sender)} id={quoteattr(iq_id)}/>")
        action = jingle.get("action")
        log("jingle", action, [c.get("name") for c in jingle.findall(q("content", "jingle"))])
        participant.on_jingle(action, jingle.get("sid"), sender, jingle.findall(q("content", "jingle")))


if __name__ == "__main__":
    main()
