//! Where the media core writes the datagrams it sends.
//!
//! The core never holds a socket: it hands each datagram to an [`Outbox`] by letting it write
//! straight into a send slot. The worker's outbox is the `sendmmsg` batch (`udp::SendBatch`),
//! which sends a full batch and goes on, so one received batch fanned out to hundreds of
//! receivers is written once, in place, with no copy and no queue that grows; the in-memory
//! tests' outbox is [`Datagrams`], which keeps them.

use std::net::SocketAddr;

/// Largest datagram the bridge accepts; larger ones are dropped as oversized.
pub const MAX_DATAGRAM: usize = 1500;
/// Bytes of one send or receive slot: a full datagram plus SRTP tags, and room to detect
/// oversize.
pub const SLOT: usize = 2048;

pub trait Outbox {
    /// Lets `write` fill the next send slot (`SLOT` bytes); it returns the destination and
    /// the length written, or None to abandon the slot.
    fn push(&mut self, write: impl FnOnce(&mut [u8]) -> Option<(SocketAddr, usize)>);
}

/// An outbox that keeps every datagram, for driving the core without sockets.
#[derive(Default)]
pub struct Datagrams {
    pub sent: Vec<(SocketAddr, Vec<u8>)>,
    slot: Vec<u8>,
}

impl Outbox for Datagrams {
    fn push(&mut self, write: impl FnOnce(&mut [u8]) -> Option<(SocketAddr, usize)>) {
        self.slot.resize(SLOT, 0);
        if let Some((to, len)) = write(&mut self.slot) {
            self.sent.push((to, self.slot[..len.min(SLOT)].to_vec()));
        }
    }
}
