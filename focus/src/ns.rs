//! XML namespaces of the protocols the model covers.

/// XEP-0166 Jingle.
pub const JINGLE: &str = "urn:xmpp:jingle:1";
/// XEP-0167 RTP sessions.
pub const JINGLE_RTP: &str = "urn:xmpp:jingle:apps:rtp:1";
/// XEP-0176 ICE-UDP transport.
pub const JINGLE_ICE_UDP: &str = "urn:xmpp:jingle:transports:ice-udp:1";
/// XEP-0320 DTLS fingerprints.
pub const JINGLE_DTLS: &str = "urn:xmpp:jingle:apps:dtls:0";
/// XEP-0339 source-specific media attributes.
pub const JINGLE_SSMA: &str = "urn:xmpp:jingle:apps:rtp:ssma:0";
/// XEP-0338 grouping (BUNDLE).
pub const JINGLE_GROUPING: &str = "urn:xmpp:jingle:apps:grouping:0";
/// XEP-0293 RTCP feedback.
pub const JINGLE_RTCP_FB: &str = "urn:xmpp:jingle:apps:rtp:rtcp-fb:0";
/// XEP-0294 RTP header extensions (also `extmap-allow-mixed`).
pub const JINGLE_RTP_HDREXT: &str = "urn:xmpp:jingle:apps:rtp:rtp-hdrext:0";
/// XEP-0343 DTLS/SCTP (`sctpmap`).
pub const JINGLE_DTLS_SCTP: &str = "urn:xmpp:jingle:transports:dtls-sctp:1";
/// Jitsi Meet: `ssrc-info` (who owns a source).
pub const JITSI_MEET: &str = "http://jitsi.org/jitmeet";
/// Jitsi Meet's presence extensions (`region`: where a participant is).
pub const JITSI_MEET_PRESENCE: &str = "http://jitsi.org/jitsi-meet";
/// Jitsi colibri: the bridge channel's `web-socket`.
pub const JITSI_COLIBRI: &str = "http://jitsi.org/protocol/colibri";
/// Jitsi focus: `bridge-session`.
pub const JITSI_FOCUS: &str = "http://jitsi.org/protocol/focus";
/// A client's stanzas: unqualified elements in a presence (lib-jitsi-meet's participant
/// properties such as `jitsi_participant_region`) are in it.
pub const JABBER_CLIENT: &str = "jabber:client";
/// XEP-0353 Jingle Message Initiation: `<propose>` (a client rings) and `<proceed>`.
pub const JINGLE_MESSAGE: &str = "urn:xmpp:jingle-message:0";
