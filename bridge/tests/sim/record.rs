//! Fuzz seeds recorded from the simulated calls: with `TUTTI_RECORD_SEEDS=DIR` (the fuzz
//! corpora, `fuzz/corpus`), every bridge of a scenario keeps the datagrams that arrive at it, as
//! they arrive (STUN, DTLS, SRTP, SRTCP; demultiplexed by the first byte, RFC 7983), and writes
//! them when it is dropped: the first few of each kind alone to `stun/`, `srtp/`, `rtp/` and
//! `rtcp/` (SRTP and SRTCP keep their RTP and first RTCP header in the clear, so the header
//! parsers see what a browser-like sender writes), and each sender's first datagrams as a
//! sequence of records (`tutti_fuzz_targets::Records`) to `ice_agent/` (its STUN), `dtls/` (its
//! DTLS flights) and `bridge_core/` (everything, as raw datagrams from a peer). Files are named
//! by a hash of their bytes, so recording twice adds nothing twice. Without the variable
//! nothing is kept.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::SocketAddr;
use std::path::PathBuf;

/// How many datagrams of one sender a sequence seed holds.
const SEQUENCE_LEN: usize = 24;

/// The datagram kinds of RFC 7983's demultiplexing, as the bridge tells them apart.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Stun,
    Dtls,
    Srtp,
    Srtcp,
}

impl Kind {
    /// The kind and what tells its datagrams apart: STUN's message type, the RTP payload type,
    /// the first RTCP packet's type.
    fn shape(datagram: &[u8]) -> Option<(Kind, u16)> {
        let kind = Kind::of(datagram)?;
        let shape = match (kind, datagram) {
            (Kind::Stun, [a, b, ..]) => u16::from_be_bytes([*a, *b]),
            (Kind::Srtp, [_, pt, ..]) => u16::from(pt & 0x7f),
            (Kind::Srtcp, [_, pt, ..]) => u16::from(*pt),
            _ => 0,
        };
        Some((kind, shape))
    }

    fn of(datagram: &[u8]) -> Option<Kind> {
        match *datagram {
            [0..=3, ..] => Some(Kind::Stun),
            [20..=63, ..] => Some(Kind::Dtls),
            [128..=191, 192..=223, ..] => Some(Kind::Srtcp),
            [128..=191, ..] => Some(Kind::Srtp),
            _ => None,
        }
    }
}

/// The datagrams one bridge received, kept for writing as seeds.
pub struct SeedRecorder {
    dir: PathBuf,
    /// The srtp target's first byte (bit 0: the profile) for what this bridge negotiates.
    srtp_selector: u8,
    /// The first datagram of each shape ([`Kind::shape`]).
    singles: HashMap<(Kind, u16), Vec<u8>>,
    /// Each sender's first datagrams, in order of arrival.
    sequences: HashMap<SocketAddr, Vec<Vec<u8>>>,
}

impl SeedRecorder {
    /// A recorder if `TUTTI_RECORD_SEEDS` is set, for a bridge that accepts `srtp_profiles`
    /// (the sims' browsers take the bridge's first choice).
    pub fn from_env(srtp_profiles: tutti_dtls::SrtpProfiles) -> Option<SeedRecorder> {
        let dir = std::env::var_os("TUTTI_RECORD_SEEDS")?;
        Some(SeedRecorder {
            dir: PathBuf::from(dir),
            srtp_selector: u8::from(srtp_profiles == tutti_dtls::SrtpProfiles::AesCmOnly),
            singles: HashMap::new(),
            sequences: HashMap::new(),
        })
    }

    pub fn record(&mut self, from: SocketAddr, datagram: &[u8]) {
        let Some(shape) = Kind::shape(datagram) else {
            return;
        };
        self.singles
            .entry(shape)
            .or_insert_with(|| datagram.to_vec());
        let sequence = self.sequences.entry(from).or_default();
        if sequence.len() < SEQUENCE_LEN {
            sequence.push(datagram.to_vec());
        }
    }

    fn write(&self, target: &str, bytes: &[u8]) {
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir).expect("a corpus directory");
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        let path = dir.join(format!("recorded-{:016x}", hasher.finish()));
        std::fs::write(&path, bytes).expect("a recorded seed written");
    }
}

/// A sequence seed: one record (`[op][len u16 BE][bytes]`) per datagram.
fn records<'a>(op: u8, datagrams: impl Iterator<Item = &'a Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for datagram in datagrams {
        let len = u16::try_from(datagram.len()).expect("a datagram of at most 65535 bytes");
        out.push(op);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(datagram);
    }
    out
}

impl Drop for SeedRecorder {
    fn drop(&mut self) {
        for ((kind, _), datagram) in &self.singles {
            match kind {
                Kind::Stun => self.write("stun", datagram),
                Kind::Dtls => {}
                // The srtp target's first byte: bit 0 the profile, bit 1 set for SRTCP.
                Kind::Srtp => {
                    self.write("rtp", datagram);
                    self.write("srtp", &[&[self.srtp_selector][..], datagram].concat());
                }
                Kind::Srtcp => {
                    self.write("rtcp", datagram);
                    self.write("srtp", &[&[self.srtp_selector | 2][..], datagram].concat());
                }
            }
        }
        for sequence in self.sequences.values() {
            let of = |kind| sequence.iter().filter(move |d| Kind::of(d) == Some(kind));
            // ice_agent: op 0, a datagram from its first candidate; dtls: op 0, a datagram to
            // a server (the sims' browsers are DTLS clients); bridge_core: op 0, a raw
            // datagram from the first peer.
            for (target, bytes) in [
                ("ice_agent", records(0, of(Kind::Stun))),
                ("dtls", records(0, of(Kind::Dtls))),
                ("bridge_core", records(0, sequence.iter())),
            ] {
                if !bytes.is_empty() {
                    self.write(target, &bytes);
                }
            }
        }
    }
}
