//! RFC 7983 demultiplexing of the one UDP flow that carries STUN, DTLS and SRTP/SRTCP.

/// What a received datagram is, judged by its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PacketKind {
    Stun,
    Dtls,
    Rtp,
    Rtcp,
    Unknown,
}

/// Classifies a datagram: first byte 0-3 STUN, 20-63 DTLS, 128-191 RTP or RTCP (RTCP when the
/// second byte, the packet type with the marker bit, is 192..=223 as RFC 5761 advises).
pub fn classify(datagram: &[u8]) -> PacketKind {
    match datagram.first() {
        Some(0..=3) => PacketKind::Stun,
        Some(20..=63) => PacketKind::Dtls,
        Some(128..=191) => match datagram.get(1) {
            Some(192..=223) => PacketKind::Rtcp,
            Some(_) => PacketKind::Rtp,
            None => PacketKind::Unknown,
        },
        _ => PacketKind::Unknown,
    }
}
