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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_rfc7983_ranges() {
        assert_eq!(classify(&[0x00, 0x01]), PacketKind::Stun);
        assert_eq!(classify(&[0x03]), PacketKind::Stun);
        assert_eq!(classify(&[20, 0xfe]), PacketKind::Dtls);
        assert_eq!(classify(&[22, 0xfe]), PacketKind::Dtls);
        assert_eq!(classify(&[63]), PacketKind::Dtls);
        assert_eq!(classify(&[0x80, 111]), PacketKind::Rtp);
        assert_eq!(classify(&[0x90, 0xe4]), PacketKind::Rtp); // marker + PT 100
        assert_eq!(classify(&[0x81, 200]), PacketKind::Rtcp); // SR
        assert_eq!(classify(&[0x81, 205]), PacketKind::Rtcp); // RTPFB
        assert_eq!(classify(&[0x8f, 223]), PacketKind::Rtcp);
        assert_eq!(classify(&[0x80, 224]), PacketKind::Rtp);
        assert_eq!(classify(&[0x80]), PacketKind::Unknown);
        assert_eq!(classify(&[]), PacketKind::Unknown);
        assert_eq!(classify(&[4]), PacketKind::Unknown);
        assert_eq!(classify(&[64, 0]), PacketKind::Unknown);
        assert_eq!(classify(&[192, 0]), PacketKind::Unknown);
    }
}
