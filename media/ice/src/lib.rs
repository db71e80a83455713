//! Sans-IO STUN codec and full ICE agent (RFC 8445) for a media bridge that serves every
//! endpoint from one UDP socket. The caller owns the socket and the clock; an [`IceAgent`] per
//! endpoint consumes received STUN messages and timer ticks, and produces datagrams to send
//! and [`Event`]s.

mod agent;
pub mod stun;

use std::time::Duration;

pub use agent::IceAgent;
use rand::Rng;

/// ICE username fragment and password of one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub ufrag: String,
    pub pwd: String,
}

impl Credentials {
    /// Random ice-chars: 8-char ufrag, 24-char pwd (RFC 8839 minimums are 4 and 22).
    /// Only letters and digits are used (a subset of ice-chars) so the values need no escaping
    /// in SDP, Jingle XML or STUN USERNAME.
    pub fn random() -> Credentials {
        Credentials {
            ufrag: random_chars(8),
            pwd: random_chars(24),
        }
    }
}

fn random_chars(n: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Timers and role of one agent.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The bridge offers, so it is controlling unless a role conflict says otherwise.
    pub controlling: bool,
    /// Prefix of every transaction id this agent creates, for routing responses.
    pub transaction_tag: u32,
    /// Ta: pacing of new check transmissions.
    pub check_interval: Duration,
    /// Time from `set_remote_credentials` to `Event::Failed` if nothing is selected.
    pub connect_timeout: Duration,
    /// Mean period of consent checks on the selected pair (RFC 7675, jittered ±20%).
    pub consent_interval: Duration,
    /// Silence on the selected pair after which consent is lost.
    pub consent_timeout: Duration,
    /// Seeds the agent's own randomness (tie-breaker, transaction ids, consent jitter), so an
    /// owner that is itself seeded gets the same agent behaviour for the same inputs.
    pub seed: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            controlling: true,
            transaction_tag: 0,
            check_interval: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(15),
            consent_interval: Duration::from_secs(5),
            consent_timeout: Duration::from_secs(30),
            seed: rand::random(),
        }
    }
}

/// What the agent reports to its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// This remote address proved it knows the credentials (valid request, or valid response to
    /// our request sent to it): the caller may now accept DTLS/SRTP datagrams from it.
    AddressValidated(std::net::SocketAddr),
    /// The nominated pair: media goes to this address from now on.
    Selected(std::net::SocketAddr),
    /// Nothing was selected within the connect timeout.
    Failed,
    /// Consent on the selected pair expired.
    TimedOut,
}

/// Why a received STUN message was dropped.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    #[error("malformed STUN message")]
    Malformed,
    #[error("missing or wrong FINGERPRINT")]
    BadFingerprint,
    #[error("missing or wrong MESSAGE-INTEGRITY")]
    BadIntegrity,
    #[error("USERNAME does not name this agent")]
    UnknownUsername,
    #[error("response to no outstanding transaction")]
    UnknownTransaction,
    #[error("remote credentials not known yet")]
    NoRemoteCredentials,
    #[error("unsupported STUN method")]
    Unsupported,
}
