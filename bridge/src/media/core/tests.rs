//! The core with no network at all: what it writes follows from its inputs and its seed.

use std::time::{Duration, Instant};

use super::Core;
use crate::media::limits::LimitSettings;
use crate::media::outbox::Datagrams;
use crate::media::{Command, EndpointSettings, RemoteSetup, RemoteTransport, SpeakerSettings};

fn core(seed: u64, now: Instant) -> Core {
    let settings = EndpointSettings {
        consent_timeout: Duration::from_secs(10),
        ice_timeout: Duration::from_secs(10),
        dtls_timeout: Duration::from_secs(10),
        srtp_profiles: tutti_dtls::SrtpProfiles::GcmThenAesCm,
        retransmission_cache_packets: 16,
        receiver_bandwidth_bps: 2_500_000,
        speakers: SpeakerSettings::default(),
        limits: LimitSettings::default(),
    };
    Core::new(
        tutti_dtls::Certificate::generate().unwrap(),
        settings,
        seed,
        now,
    )
}

/// What a core sends in its first 200 ms after an endpoint learns its remote candidate.
fn first_checks(seed: u64, now: Instant) -> Vec<Vec<u8>> {
    let mut core = core(seed, now);
    let mut out = Datagrams::default();
    let id = |s: &str| s.to_owned();
    core.handle_command(
        now,
        Command::CreateConference {
            conference_id: id("c"),
        },
        &mut out,
    );
    core.handle_command(
        now,
        Command::AllocateEndpoint {
            conference_id: id("c"),
            endpoint_id: id("e"),
            participant_id: id("p"),
            ice: tutti_ice::Credentials {
                ufrag: id("localufr"),
                pwd: id("local-password-of-24-chr"),
            },
            allocation: 1,
            receives_by_mid: false,
        },
        &mut out,
    );
    core.handle_command(
        now,
        Command::UpdateEndpoint {
            conference_id: id("c"),
            endpoint_id: id("e"),
            transport: Some(RemoteTransport {
                ufrag: id("remoteuf"),
                pwd: id("remote-password-of-24-ch"),
                candidates: vec![("10.0.0.2:5000".parse().unwrap(), 2_130_706_431)],
                fingerprint: [7; 32],
                setup: RemoteSetup::Active,
            }),
            media: None,
            sources: None,
            receive_mids: None,
        },
        &mut out,
    );
    let mut t = now;
    while t < now + Duration::from_millis(200) {
        if t >= core.poll_timeout() {
            core.handle_timeout(t, &mut out);
        }
        t += Duration::from_millis(1);
    }
    assert!(core.poll_event().is_some(), "the allocation is reported");
    out.sent.into_iter().map(|(_, bytes)| bytes).collect()
}

#[test]
fn the_same_seed_and_inputs_give_the_same_datagrams() {
    let now = Instant::now();
    let a = first_checks(42, now);
    assert!(a.len() >= 2, "ICE checks sent: {}", a.len());
    assert_eq!(a, first_checks(42, now), "same seed, same bytes");
    assert_ne!(
        a,
        first_checks(43, now),
        "another seed, other transaction ids"
    );
}
