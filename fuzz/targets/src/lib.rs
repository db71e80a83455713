//! Tutti's fuzz targets. Each `pub fn <target>(data: &[u8])` feeds arbitrary bytes to the
//! production entry points of one part of the system and must never panic, hang or grow without
//! bound. The cargo-fuzz crate (`fuzz/`, outside the workspace) wraps each in a libFuzzer
//! `fuzz_target!`; `tests/replay.rs` replays every stored corpus and regression input through
//! them on the stable toolchain, so CI runs them without a fuzzer build.
//!
//! Inputs that carry several items (datagrams, stanzas, steps) are cut by [`Records`].

mod core;
mod focus;
mod media;
mod signalling;

pub use crate::core::{bridge_core, bridge_core_warm};
pub use crate::focus::{jingle, pool, room};
pub use crate::media::{
    dtls, ice_agent, rtcp, rtp, srtp, stun, SRTP_KEY, SRTP_SALT, STUN_PASSWORD,
};
pub use crate::signalling::{channel, grpc};

/// A fuzz target: takes any bytes, must not panic.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/run` and the corpus directories name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("stun", stun),
    ("ice_agent", ice_agent),
    ("rtp", rtp),
    ("rtcp", rtcp),
    ("srtp", srtp),
    ("dtls", dtls),
    ("bridge_core", bridge_core),
    ("bridge_core_warm", bridge_core_warm),
    ("jingle", jingle),
    ("room", room),
    ("pool", pool),
    ("channel", channel),
    ("grpc", grpc),
];

/// Splits an input into records of `[op: u8][len: u16 big-endian][len bytes]`; the last record
/// takes what is left when the input ends early. Each item is `(op, bytes)`.
pub struct Records<'a> {
    rest: &'a [u8],
}

impl<'a> Records<'a> {
    pub fn new(data: &'a [u8]) -> Records<'a> {
        Records { rest: data }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&op, rest) = self.rest.split_first()?;
        let len = match rest {
            [hi, lo, ..] => usize::from(u16::from_be_bytes([*hi, *lo])),
            _ => 0,
        };
        let rest = rest.get(2..).unwrap_or_default();
        let (record, rest) = rest.split_at(len.min(rest.len()));
        self.rest = rest;
        Some((op, record))
    }
}

/// Encodes records the way [`Records`] reads them (for seed corpora).
pub fn encode_records<'a>(records: impl IntoIterator<Item = (u8, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (op, bytes) in records {
        let len = u16::try_from(bytes.len()).expect("a record of at most 65535 bytes");
        out.push(op);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
    }
    out
}
