//! An in-memory test harness for the bridge: sans-IO nodes on a simulated network and clock.
//!
//! - [`net::SimNetwork`]: hosts identified by address, directional links with delay, jitter,
//!   loss, reordering, a bandwidth cap with a tail-drop queue, and cuts, every parameter
//!   changeable at any simulated time, deterministic from a seed.
//! - [`sim::Sim`] and the [`sim::Node`] trait: runs nodes (anything that takes
//!   `(now, datagram)` and timer ticks and returns datagrams and its next timeout) over the
//!   network, advancing the clock from event to event.
//! - [`peer::SimPeer`]: a WebRTC participant on str0m, an independent sans-IO stack, that plays
//!   a browser towards the bridge (controlled ICE, DTLS client, SRTP, Opus + VP8 or H.264 with
//!   RTX, simulcast with or without rids, VP8 temporal layers) and records what it receives
//!   (also from a bridge's output SSRC switching between a sender's layers) and which RTCP it
//!   sees.
//!
//! Everything is deterministic given a seed and a start `Instant`: the clock is
//! `start + simulated duration`, the real clock is read only by the test to create `start`
//! (and by str0m internally to map `Instant`s to NTP time in its sender reports), and nothing
//! sleeps. DTLS in str0m draws its own randomness, so runs with peers exchange different bytes
//! (see [`peer`]); the network's behaviour for a given sequence of inputs is reproducible.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use tutti_sim::{LinkConfig, PeerConfig, Sim, SimPeer};
//!
//! let start = Instant::now();
//! let mut sim = Sim::new(42, start);
//! sim.net.set_default_link(LinkConfig::new().delay(Duration::from_millis(20)));
//! let mut a = SimPeer::new(PeerConfig::new("a", "10.0.0.1:5000".parse().unwrap(), 1), start);
//! let mut b = SimPeer::new(
//!     PeerConfig { ice_controlling: true, dtls_active: false, ..PeerConfig::new("b", "10.0.0.2:5000".parse().unwrap(), 2) },
//!     start,
//! );
//! a.set_remote_peer(&b.local());
//! b.set_remote_peer(&a.local());
//! a.expect_from(b.config());
//! b.expect_from(a.config());
//! a.set_sending(true);
//! b.set_sending(true);
//! let (a, b) = (sim.add("a", a), sim.add("b", b));
//! sim.run_for(Duration::from_secs(5));
//! let video = sim.node(b).config().video[0].ssrc;
//! assert!(sim.node(a).rx(video).unwrap().is_continuous());
//! ```

mod h264;
pub mod net;
pub mod peer;
pub mod sim;

pub use net::{Delivery, LinkConfig, LinkStats, SimNetwork, PACKET_OVERHEAD};
pub use peer::{
    call_each_other, speech_levels, FrameCounts, LocalParams, PeerConfig, PeerStats, RtcpCounts,
    RxPacket, RxStream, SimPeer, Switch, TxStream, VideoCodec, VideoLayer, AUDIO_MID, VIDEO_MID,
};
pub use sim::{Node, NodeId, Outbox, Sim, TraceEntry, Transmit};
