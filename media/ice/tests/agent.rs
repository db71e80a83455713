//! IceAgent behaviour through an in-memory network and a simulated clock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tutti_ice::stun::{self, BindingRequest, Class, IntegrityKey, Message, Role};
use tutti_ice::{AgentConfig, Credentials, Error, Event, IceAgent};

const BRIDGE: &str = "10.0.0.1:10000";
const CLIENT: &str = "10.0.0.2:5000";
const TAG: u32 = 0xDEAD_BEEF;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn creds(ufrag: &str, pwd: &str) -> Credentials {
    Credentials {
        ufrag: ufrag.to_owned(),
        pwd: pwd.to_owned(),
    }
}

fn bridge_creds() -> Credentials {
    creds("bridgeuf", "bridgePasswordBridgePass")
}

fn client_creds() -> Credentials {
    creds("clientuf", "clientPasswordClientPass")
}

fn bridge_config() -> AgentConfig {
    AgentConfig {
        transaction_tag: TAG,
        ..AgentConfig::default()
    }
}

fn client_config() -> AgentConfig {
    AgentConfig {
        controlling: false,
        transaction_tag: 0x0102_0304,
        ..AgentConfig::default()
    }
}

fn events(agent: &mut IceAgent) -> Vec<Event> {
    std::iter::from_fn(|| agent.poll_event()).collect()
}

fn drain(agent: &mut IceAgent) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut buf = [0u8; 548];
    std::iter::from_fn(|| {
        agent
            .poll_transmit(&mut buf)
            .map(|(to, n)| (to, buf[..n].to_vec()))
    })
    .collect()
}

/// Two agents on a lossless network; `a` lives at `a_addr`, `b` at `b_addr`. Datagrams to other
/// addresses are lost. `cut` drops everything.
struct Net {
    a: IceAgent,
    b: IceAgent,
    a_addr: SocketAddr,
    b_addr: SocketAddr,
    now: Instant,
    cut: bool,
    a_events: Vec<(Instant, Event)>,
    b_events: Vec<(Instant, Event)>,
    /// Every datagram `a` sent: (time, destination, bytes).
    a_sent: Vec<(Instant, SocketAddr, Vec<u8>)>,
    /// Last time anything was delivered to `a`.
    a_last_rx: Option<Instant>,
}

impl Net {
    fn new(a: IceAgent, a_addr: SocketAddr, b: IceAgent, b_addr: SocketAddr, now: Instant) -> Net {
        Net {
            a,
            b,
            a_addr,
            b_addr,
            now,
            cut: false,
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_sent: Vec::new(),
            a_last_rx: None,
        }
    }

    /// Delivers queued datagrams until both sides are quiet.
    fn flush(&mut self) {
        loop {
            let mut moved = false;
            for (to, bytes) in drain(&mut self.a) {
                moved = true;
                self.a_sent.push((self.now, to, bytes.clone()));
                if !self.cut && to == self.b_addr {
                    self.b
                        .handle_stun(self.a_addr, &bytes, self.now)
                        .expect("b accepts a's message");
                }
            }
            for (to, bytes) in drain(&mut self.b) {
                moved = true;
                if !self.cut && to == self.a_addr {
                    self.a_last_rx = Some(self.now);
                    self.a
                        .handle_stun(self.b_addr, &bytes, self.now)
                        .expect("a accepts b's message");
                }
            }
            let now = self.now;
            self.a_events
                .extend(events(&mut self.a).into_iter().map(|e| (now, e)));
            self.b_events
                .extend(events(&mut self.b).into_iter().map(|e| (now, e)));
            if !moved {
                return;
            }
        }
    }

    /// Advances the clock to the next timer of either agent (at most `limit`) and fires it.
    fn step(&mut self, limit: Instant) -> bool {
        self.flush();
        let next = [self.a.poll_timeout(), self.b.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next.filter(|&t| t <= limit) else {
            self.now = limit;
            return false;
        };
        assert!(
            next >= self.now - Duration::from_secs(60),
            "timer far in the past"
        );
        self.now = self.now.max(next);
        self.a.handle_timeout(self.now);
        self.b.handle_timeout(self.now);
        self.flush();
        true
    }

    fn run_until(&mut self, limit: Instant) {
        while self.step(limit) {}
    }

    fn run_for(&mut self, d: Duration) {
        let limit = self.now + d;
        self.run_until(limit);
    }
}

fn selected_at(events: &[(Instant, Event)]) -> Vec<SocketAddr> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Selected(a) => Some(*a),
            _ => None,
        })
        .collect()
}

/// Bridge (controlling) and client (controlled) who know each other's host candidate.
fn connected_pair(now: Instant) -> Net {
    let mut bridge = IceAgent::new(bridge_config(), bridge_creds(), now);
    let mut client = IceAgent::new(client_config(), client_creds(), now);
    let c = client_creds();
    let b = bridge_creds();
    bridge.set_remote_credentials(&c.ufrag, &c.pwd, now);
    bridge.add_remote_candidate(addr(CLIENT), 2_130_706_431, now);
    client.set_remote_credentials(&b.ufrag, &b.pwd, now);
    client.add_remote_candidate(addr(BRIDGE), 2_130_706_431, now);
    Net::new(bridge, addr(BRIDGE), client, addr(CLIENT), now)
}

#[test]
fn controlling_and_controlled_select_each_other() {
    let start = Instant::now();
    let mut net = connected_pair(start);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.a.selected(), Some(addr(CLIENT)));
    assert_eq!(net.b.selected(), Some(addr(BRIDGE)));
    assert_eq!(selected_at(&net.a_events), vec![addr(CLIENT)]);
    assert_eq!(selected_at(&net.b_events), vec![addr(BRIDGE)]);
    assert!(net
        .a_events
        .iter()
        .any(|(_, e)| *e == Event::AddressValidated(addr(CLIENT))));
    assert!(net
        .b_events
        .iter()
        .any(|(_, e)| *e == Event::AddressValidated(addr(BRIDGE))));
    assert!(net.a.is_controlling());
    assert!(!net.b.is_controlling());
    // The bridge nominated: one of its requests carried USE-CANDIDATE.
    assert!(net.a_sent.iter().any(|(_, _, bytes)| {
        let m = Message::parse(bytes).unwrap();
        m.class == Class::Request && m.use_candidate
    }));
    // Every request the bridge created carries its transaction tag.
    for (_, _, bytes) in &net.a_sent {
        let m = Message::parse(bytes).unwrap();
        if m.class == Class::Request {
            assert_eq!(m.transaction_id[..4], TAG.to_be_bytes());
            assert_eq!(m.username, Some(&b"clientuf:bridgeuf"[..]));
            assert!(m.ice_controlling.is_some());
        }
    }
}

#[test]
fn success_response_carries_source_address_and_routes_by_tag() {
    let now = Instant::now();
    let mut bridge = IceAgent::new(bridge_config(), bridge_creds(), now);
    let c = client_creds();
    bridge.set_remote_credentials(&c.ufrag, &c.pwd, now);
    bridge.add_remote_candidate(addr(CLIENT), 100, now);
    let mut buf = [0u8; 548];
    assert_eq!(
        bridge.poll_transmit(&mut buf),
        None,
        "checks start on the timer"
    );
    assert_eq!(bridge.poll_timeout(), Some(now));
    bridge.handle_timeout(now);
    let (to, n) = bridge.poll_transmit(&mut buf).unwrap();
    assert_eq!(to, addr(CLIENT));
    let req = Message::parse(&buf[..n]).unwrap();
    req.check_integrity(&IntegrityKey::new(&c.pwd)).unwrap();
    req.check_fingerprint().unwrap();
    assert_eq!(req.priority, Some((110 << 24) | (65535 << 8) | 255));
    let id = req.transaction_id;

    // The client answers; the tag routes the response back.
    let mut resp = [0u8; 548];
    let n = stun::write_binding_success(&mut resp, &id, addr(BRIDGE), &IntegrityKey::new(&c.pwd))
        .unwrap();
    assert_eq!(stun::response_transaction_tag(&resp[..n]), Some(TAG));
    // From the wrong address: not our transaction.
    assert_eq!(
        bridge.handle_stun(addr("10.9.9.9:1"), &resp[..n], now),
        Err(Error::UnknownTransaction)
    );
    // Keyed with the wrong password.
    let mut forged = [0u8; 548];
    let fn_ = stun::write_binding_success(
        &mut forged,
        &id,
        addr(BRIDGE),
        &IntegrityKey::new("notTheClientPasswordxxxx"),
    )
    .unwrap();
    assert_eq!(
        bridge.handle_stun(addr(CLIENT), &forged[..fn_], now),
        Err(Error::BadIntegrity)
    );
    assert_eq!(bridge.poll_event(), None);
    bridge.handle_stun(addr(CLIENT), &resp[..n], now).unwrap();
    assert_eq!(
        bridge.poll_event(),
        Some(Event::AddressValidated(addr(CLIENT)))
    );
    // A second copy of the response is no longer an outstanding transaction.
    assert_eq!(
        bridge.handle_stun(addr(CLIENT), &resp[..n], now),
        Err(Error::UnknownTransaction)
    );
    // Nomination follows after Ta.
    bridge.handle_timeout(now + Duration::from_millis(50));
    let (to, n) = bridge.poll_transmit(&mut buf).unwrap();
    assert_eq!(to, addr(CLIENT));
    assert!(Message::parse(&buf[..n]).unwrap().use_candidate);
}

fn client_request(
    ufrag_pair: &str,
    pwd: &str,
    id: [u8; 12],
    role: Role,
    use_candidate: bool,
) -> Vec<u8> {
    let mut buf = [0u8; 548];
    let n = BindingRequest {
        transaction_id: id,
        username: ufrag_pair,
        password: pwd,
        priority: 1_845_501_695,
        role,
        use_candidate,
    }
    .encode(&mut buf)
    .unwrap();
    buf[..n].to_vec()
}

#[test]
fn request_before_remote_credentials_is_answered_and_learns_prflx() {
    let now = Instant::now();
    let b = bridge_creds();
    let mut bridge = IceAgent::new(bridge_config(), b.clone(), now);
    let from = addr("192.0.2.50:40000");
    let req = client_request(
        "bridgeuf:clientuf",
        &b.pwd,
        [9; 12],
        Role::Controlled(1),
        false,
    );
    bridge.handle_stun(from, &req, now).unwrap();
    let mut buf = [0u8; 548];
    let (to, n) = bridge.poll_transmit(&mut buf).unwrap();
    assert_eq!(to, from);
    let resp = Message::parse(&buf[..n]).unwrap();
    assert_eq!(resp.class, Class::SuccessResponse);
    assert_eq!(resp.transaction_id, [9; 12]);
    assert_eq!(resp.xor_mapped_address, Some(from));
    resp.check_integrity(&IntegrityKey::new(&b.pwd)).unwrap();
    resp.check_fingerprint().unwrap();
    assert_eq!(bridge.poll_event(), Some(Event::AddressValidated(from)));
    // The triggered check waits for the remote credentials.
    assert_eq!(bridge.poll_transmit(&mut buf), None);
    let c = client_creds();
    let later = now + Duration::from_millis(300);
    bridge.set_remote_credentials(&c.ufrag, &c.pwd, later);
    bridge.handle_timeout(later);
    let (to, n) = bridge.poll_transmit(&mut buf).unwrap();
    assert_eq!(to, from);
    let check = Message::parse(&buf[..n]).unwrap();
    assert_eq!(check.class, Class::Request);
    assert_eq!(check.username, Some(&b"clientuf:bridgeuf"[..]));
    check.check_integrity(&IntegrityKey::new(&c.pwd)).unwrap();
}

#[test]
fn peer_reflexive_address_is_learned_and_selected() {
    let now = Instant::now();
    let mut bridge = IceAgent::new(bridge_config(), bridge_creds(), now);
    let mut client = IceAgent::new(client_config(), client_creds(), now);
    let (b, c) = (bridge_creds(), client_creds());
    bridge.set_remote_credentials(&c.ufrag, &c.pwd, now);
    // The client's signalled candidate is unreachable (behind a NAT): its real address differs.
    bridge.add_remote_candidate(addr("192.168.1.20:5000"), 2_130_706_431, now);
    client.set_remote_credentials(&b.ufrag, &b.pwd, now);
    client.add_remote_candidate(addr(BRIDGE), 2_130_706_431, now);
    let nat = addr("198.51.100.9:61234");
    let mut net = Net::new(bridge, addr(BRIDGE), client, nat, now);
    net.run_for(Duration::from_secs(3));
    assert_eq!(net.a.selected(), Some(nat));
    assert_eq!(net.b.selected(), Some(addr(BRIDGE)));
    assert!(net
        .a_events
        .iter()
        .any(|(_, e)| *e == Event::AddressValidated(nat)));
    assert!(!net
        .a_events
        .iter()
        .any(|(_, e)| *e == Event::AddressValidated(addr("192.168.1.20:5000"))));
}

#[test]
fn invalid_requests_are_rejected_without_response() {
    let now = Instant::now();
    let b = bridge_creds();
    let mut bridge = IceAgent::new(bridge_config(), b.clone(), now);
    let from = addr(CLIENT);
    let role = Role::Controlled(5);
    let good = client_request("bridgeuf:clientuf", &b.pwd, [1; 12], role, false);

    let wrong_pwd = client_request(
        "bridgeuf:clientuf",
        "wrongPasswordWrongPass!",
        [1; 12],
        role,
        false,
    );
    assert_eq!(
        bridge.handle_stun(from, &wrong_pwd, now),
        Err(Error::BadIntegrity)
    );

    let wrong_ufrag = client_request("otherufr:clientuf", &b.pwd, [1; 12], role, false);
    assert_eq!(
        bridge.handle_stun(from, &wrong_ufrag, now),
        Err(Error::UnknownUsername)
    );
    let no_colon = client_request("bridgeuf", &b.pwd, [1; 12], role, false);
    assert_eq!(
        bridge.handle_stun(from, &no_colon, now),
        Err(Error::UnknownUsername)
    );

    let mut bad_fp = good.clone();
    let last = bad_fp.len() - 1;
    bad_fp[last] ^= 0x80;
    assert_eq!(
        bridge.handle_stun(from, &bad_fp, now),
        Err(Error::BadFingerprint)
    );

    let truncated = &good[..good.len() - 8];
    assert_eq!(
        bridge.handle_stun(from, truncated, now),
        Err(Error::Malformed)
    );
    assert_eq!(
        bridge.handle_stun(from, &good[..10], now),
        Err(Error::Malformed)
    );
    assert_eq!(bridge.handle_stun(from, &[], now), Err(Error::Malformed));
    assert_eq!(
        bridge.handle_stun(from, b"\x80\x60 some RTP-looking bytes", now),
        Err(Error::Malformed)
    );

    let mut buf = [0u8; 548];
    assert_eq!(bridge.poll_transmit(&mut buf), None);
    assert_eq!(bridge.poll_event(), None);
    assert_eq!(bridge.poll_timeout(), None);

    // Once credentials are known the remote half of USERNAME is checked too.
    let c = client_creds();
    bridge.set_remote_credentials(&c.ufrag, &c.pwd, now);
    let stranger = client_request("bridgeuf:stranger", &b.pwd, [1; 12], role, false);
    assert_eq!(
        bridge.handle_stun(from, &stranger, now),
        Err(Error::UnknownUsername)
    );
    // Without our password the claimed remote ufrag does not matter: integrity fails first.
    let forged = client_request(
        "bridgeuf:stranger",
        "wrongPasswordWrongPass!",
        [1; 12],
        role,
        false,
    );
    assert_eq!(
        bridge.handle_stun(from, &forged, now),
        Err(Error::BadIntegrity)
    );
    assert_eq!(bridge.poll_transmit(&mut buf), None);
    // And the good one is answered.
    bridge.handle_stun(from, &good, now).unwrap();
    let (to, n) = bridge.poll_transmit(&mut buf).unwrap();
    assert_eq!(to, from);
    assert_eq!(
        Message::parse(&buf[..n]).unwrap().class,
        Class::SuccessResponse
    );
}

#[test]
fn non_binding_methods_are_unsupported_and_indications_ignored() {
    let now = Instant::now();
    let mut bridge = IceAgent::new(bridge_config(), bridge_creds(), now);
    let mut buf = [0u8; 548];
    // Allocate request (TURN), with a valid fingerprint.
    let w = stun::MessageWriter::new(&mut buf, 0x0003, &[3; 12]).unwrap();
    let n = w.finish_with_fingerprint().unwrap();
    assert_eq!(
        bridge.handle_stun(addr(CLIENT), &buf[..n], now),
        Err(Error::Unsupported)
    );
    let w = stun::MessageWriter::new(&mut buf, stun::BINDING_INDICATION, &[3; 12]).unwrap();
    let n = w.finish_with_fingerprint().unwrap();
    assert_eq!(bridge.handle_stun(addr(CLIENT), &buf[..n], now), Ok(()));
    assert_eq!(bridge.poll_transmit(&mut buf), None);
}

#[test]
fn fuzzed_input_never_panics_or_answers() {
    let now = Instant::now();
    let b = bridge_creds();
    let mut bridge = IceAgent::new(bridge_config(), b.clone(), now);
    let good = client_request(
        "bridgeuf:clientuf",
        &b.pwd,
        [1; 12],
        Role::Controlled(5),
        true,
    );
    let mut rng = StdRng::seed_from_u64(0x1CE);
    let mut out = [0u8; 548];
    let mut accepted = 0;
    for round in 0..20_000 {
        let mut data: Vec<u8> = match round % 3 {
            // Pure noise.
            0 => (0..rng.random_range(0..600))
                .map(|_| rng.random())
                .collect(),
            // A valid STUN header followed by noise, so attribute parsing is exercised.
            1 => {
                let len = rng.random_range(0..40) * 4;
                let mut d = vec![0u8; 20 + len];
                rng.fill(&mut d[..]);
                d[0] = rng.random_range(0..=1);
                d[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                d[4..8].copy_from_slice(&stun::MAGIC_COOKIE.to_be_bytes());
                d
            }
            // A valid request with a few bytes flipped and maybe truncated (length fixed up).
            _ => {
                let mut d = good.clone();
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..d.len());
                    d[i] = rng.random();
                }
                if rng.random_bool(0.3) {
                    let keep = 20 + rng.random_range(0..=(d.len() - 20) / 4) * 4;
                    d.truncate(keep);
                    d[2..4].copy_from_slice(&((keep - 20) as u16).to_be_bytes());
                }
                d
            }
        };
        let _ = stun::peek_username(&data);
        let _ = stun::response_transaction_tag(&data);
        if let Ok(m) = Message::parse(&data) {
            let _ = m.check_fingerprint();
            let _ = m.check_integrity(&IntegrityKey::new(&b.pwd));
        }
        if bridge.handle_stun(addr(CLIENT), &data, now).is_ok() {
            // Only the intact request (a mutation may rewrite a byte with its own value) or a
            // binding indication, which is ignored, can pass.
            let m = Message::parse(&data).unwrap();
            if m.class != Class::Indication && data != good {
                accepted += 1;
            }
        }
        while bridge.poll_transmit(&mut out).is_some() {}
        data.clear();
    }
    // FINGERPRINT and MESSAGE-INTEGRITY cover every byte before them.
    assert_eq!(accepted, 0, "{accepted} mutated messages accepted");
}

#[test]
fn consent_checks_keep_alive_and_timeout_after_30s_silence() {
    let start = Instant::now();
    let mut net = connected_pair(start);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.a.selected(), Some(addr(CLIENT)));
    let selected_time = net
        .a_events
        .iter()
        .find(|(_, e)| matches!(e, Event::Selected(_)))
        .unwrap()
        .0;
    // A minute of healthy consent: requests every 5 s ±20 %, no timeout.
    net.run_for(Duration::from_secs(60));
    let consent_times: Vec<Instant> = net
        .a_sent
        .iter()
        .filter(|(t, to, bytes)| {
            *t > selected_time
                && *to == addr(CLIENT)
                && Message::parse(bytes).unwrap().class == Class::Request
        })
        .map(|(t, _, _)| *t)
        .collect();
    assert!(
        consent_times.len() >= 10,
        "{} consent checks",
        consent_times.len()
    );
    for w in consent_times.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_secs(4) && gap <= Duration::from_secs(6),
            "consent gap {gap:?}"
        );
    }
    assert!(!net.a_events.iter().any(|(_, e)| *e == Event::TimedOut));

    // Silence.
    net.cut = true;
    let last = net.a_last_rx.unwrap();
    let deadline = last + Duration::from_secs(30);
    net.run_until(deadline - Duration::from_millis(1));
    assert!(!net.a_events.iter().any(|(_, e)| *e == Event::TimedOut));
    net.run_for(Duration::from_secs(60));
    let timeouts: Vec<Instant> = net
        .a_events
        .iter()
        .filter(|(_, e)| *e == Event::TimedOut)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(timeouts, vec![deadline]);
}

#[test]
fn media_keeps_consent_alive() {
    let start = Instant::now();
    let mut net = connected_pair(start);
    net.run_for(Duration::from_secs(2));
    net.cut = true;
    for _ in 0..90 {
        net.run_for(Duration::from_secs(1));
        net.a.note_media_received(addr(CLIENT), net.now);
        // Media from elsewhere does not count.
        net.b.note_media_received(addr("10.7.7.7:7"), net.now);
    }
    net.flush();
    assert!(!net.a_events.iter().any(|(_, e)| *e == Event::TimedOut));
    assert!(net.b_events.iter().any(|(_, e)| *e == Event::TimedOut));
}

#[test]
fn connect_timeout_fails_once_and_retransmissions_follow_rfc_schedule() {
    let start = Instant::now();
    let mut bridge = IceAgent::new(bridge_config(), bridge_creds(), start);
    let c = client_creds();
    bridge.set_remote_credentials(&c.ufrag, &c.pwd, start);
    bridge.add_remote_candidate(addr("192.0.2.1:9"), 1000, start);
    let mut now = start;
    let mut sends: Vec<(Duration, [u8; 12])> = Vec::new();
    let mut evs: Vec<(Duration, Event)> = Vec::new();
    let mut buf = [0u8; 548];
    let end = start + Duration::from_secs(40);
    loop {
        while let Some((to, n)) = bridge.poll_transmit(&mut buf) {
            assert_eq!(to, addr("192.0.2.1:9"));
            sends.push((
                now - start,
                Message::parse(&buf[..n]).unwrap().transaction_id,
            ));
        }
        while let Some(e) = bridge.poll_event() {
            evs.push((now - start, e));
        }
        match bridge.poll_timeout() {
            Some(t) if t <= end => {
                assert!(t >= now, "timer in the past");
                now = t;
                bridge.handle_timeout(now);
            }
            _ => break,
        }
    }
    let ms: Vec<u64> = sends.iter().map(|(t, _)| t.as_millis() as u64).collect();
    assert_eq!(ms, vec![0, 100, 300, 700, 1500, 3100, 6300]);
    assert!(
        sends.iter().all(|(_, id)| *id == sends[0].1),
        "retransmissions reuse the id"
    );
    assert_eq!(sends[0].1[..4], TAG.to_be_bytes());
    assert_eq!(evs, vec![(Duration::from_secs(15), Event::Failed)]);
}

#[test]
fn checks_are_paced_by_ta_in_priority_order_and_bounded() {
    let start = Instant::now();
    let mut bridge = IceAgent::new(bridge_config(), bridge_creds(), start);
    let c = client_creds();
    bridge.set_remote_credentials(&c.ufrag, &c.pwd, start);
    let heap_before = bridge.heap_bytes();
    // As the bridge applies a transport: credentials, then the candidates in signalled order.
    for i in 0..40u16 {
        let a = SocketAddr::from(([192, 0, 2, 1], 1000 + i));
        bridge.add_remote_candidate(a, 1000 + u32::from(i), start);
        bridge.add_remote_candidate(a, 1000 + u32::from(i), start); // duplicate
    }
    let mut buf = [0u8; 548];
    let mut now = start;
    let mut firsts: Vec<(Duration, SocketAddr)> = Vec::new();
    let end = start + Duration::from_secs(3);
    loop {
        while let Some((to, _)) = bridge.poll_transmit(&mut buf) {
            if !firsts.iter().any(|(_, a)| *a == to) {
                firsts.push((now - start, to));
            }
        }
        match bridge.poll_timeout() {
            Some(t) if t <= end => {
                now = t;
                bridge.handle_timeout(now);
            }
            _ => break,
        }
    }
    assert_eq!(firsts.len(), 32, "at most 32 remote candidates");
    for (k, (t, a)) in firsts.iter().enumerate() {
        assert_eq!(*t, Duration::from_millis(50) * k as u32, "paced by Ta");
        // The first 32 candidates were kept; the highest priority is checked first.
        assert_eq!(a.port(), 1000 + 31 - k as u16);
    }
    assert_eq!(
        bridge.heap_bytes(),
        heap_before,
        "no growth beyond reserved capacity"
    );
}

#[test]
fn role_conflict_both_controlling_resolves_to_one() {
    for controlling in [true, false] {
        let start = Instant::now();
        let mut net = connected_pair(start);
        // Rebuild the client with the same role as the bridge.
        let b = bridge_creds();
        let mut client = IceAgent::new(
            AgentConfig {
                controlling,
                ..client_config()
            },
            client_creds(),
            start,
        );
        client.set_remote_credentials(&b.ufrag, &b.pwd, start);
        client.add_remote_candidate(addr(BRIDGE), 2_130_706_431, start);
        net.b = client;
        if !controlling {
            let mut bridge = IceAgent::new(
                AgentConfig {
                    controlling: false,
                    ..bridge_config()
                },
                bridge_creds(),
                start,
            );
            let c = client_creds();
            bridge.set_remote_credentials(&c.ufrag, &c.pwd, start);
            bridge.add_remote_candidate(addr(CLIENT), 2_130_706_431, start);
            net.a = bridge;
        }
        net.run_for(Duration::from_secs(3));
        assert_ne!(net.a.is_controlling(), net.b.is_controlling());
        assert_eq!(net.a.selected(), Some(addr(CLIENT)));
        assert_eq!(net.b.selected(), Some(addr(BRIDGE)));
    }
}

#[test]
fn role_conflict_tiebreaker_rules() {
    let now = Instant::now();
    let b = bridge_creds();
    let c = client_creds();
    let mut bridge = IceAgent::new(bridge_config(), b.clone(), now);
    bridge.set_remote_credentials(&c.ufrag, &c.pwd, now);
    let mut buf = [0u8; 548];
    // Peer claims controlling with the smallest tiebreaker: we keep the role and answer 487.
    let req = client_request(
        "bridgeuf:clientuf",
        &b.pwd,
        [2; 12],
        Role::Controlling(0),
        false,
    );
    bridge.handle_stun(addr(CLIENT), &req, now).unwrap();
    let (_, n) = bridge.poll_transmit(&mut buf).unwrap();
    let resp = Message::parse(&buf[..n]).unwrap();
    assert_eq!(resp.class, Class::ErrorResponse);
    assert_eq!(resp.error_code, Some(487));
    resp.check_integrity(&IntegrityKey::new(&b.pwd)).unwrap();
    assert!(bridge.is_controlling());
    assert_eq!(
        bridge.poll_event(),
        None,
        "no state change on a conflict we win"
    );
    // The largest tiebreaker wins: we switch to controlled and answer normally.
    let req = client_request(
        "bridgeuf:clientuf",
        &b.pwd,
        [3; 12],
        Role::Controlling(u64::MAX),
        false,
    );
    bridge.handle_stun(addr(CLIENT), &req, now).unwrap();
    let (_, n) = bridge.poll_transmit(&mut buf).unwrap();
    assert_eq!(
        Message::parse(&buf[..n]).unwrap().class,
        Class::SuccessResponse
    );
    assert!(!bridge.is_controlling());
    // Controlled vs controlled: a peer with the largest tiebreaker makes us controlling.
    let req = client_request(
        "bridgeuf:clientuf",
        &b.pwd,
        [4; 12],
        Role::Controlled(u64::MAX),
        false,
    );
    bridge.handle_stun(addr(CLIENT), &req, now).unwrap();
    let (_, n) = bridge.poll_transmit(&mut buf).unwrap();
    assert_eq!(Message::parse(&buf[..n]).unwrap().error_code, Some(487));
    assert!(!bridge.is_controlling());
    let req = client_request(
        "bridgeuf:clientuf",
        &b.pwd,
        [5; 12],
        Role::Controlled(0),
        false,
    );
    bridge.handle_stun(addr(CLIENT), &req, now).unwrap();
    assert!(bridge.is_controlling());
}

#[test]
fn controlled_agent_selects_on_use_candidate_after_success() {
    let now = Instant::now();
    let b = bridge_creds();
    let c = client_creds();
    let mut bridge = IceAgent::new(
        AgentConfig {
            controlling: false,
            ..bridge_config()
        },
        b.clone(),
        now,
    );
    bridge.set_remote_credentials(&c.ufrag, &c.pwd, now);
    let from = addr(CLIENT);
    let nominate = client_request(
        "bridgeuf:clientuf",
        &b.pwd,
        [6; 12],
        Role::Controlling(1),
        true,
    );
    bridge.handle_stun(from, &nominate, now).unwrap();
    let mut buf = [0u8; 548];
    let mut check_id = None;
    while let Some((to, n)) = bridge.poll_transmit(&mut buf) {
        assert_eq!(to, from);
        let m = Message::parse(&buf[..n]).unwrap();
        if m.class == Class::Request {
            assert!(m.ice_controlled.is_some());
            assert!(!m.use_candidate);
            check_id = Some(m.transaction_id);
        }
    }
    assert_eq!(
        bridge.selected(),
        None,
        "not selected before the triggered check succeeds"
    );
    let n = stun::write_binding_success(
        &mut buf,
        &check_id.unwrap(),
        addr(BRIDGE),
        &IntegrityKey::new(&c.pwd),
    )
    .unwrap();
    bridge.handle_stun(from, &buf[..n], now).unwrap();
    assert_eq!(bridge.selected(), Some(from));
    let evs = events(&mut bridge);
    assert_eq!(
        evs,
        vec![Event::AddressValidated(from), Event::Selected(from)]
    );
}

#[test]
fn ice_restart_forgets_selection_and_reconnects() {
    let start = Instant::now();
    let mut net = connected_pair(start);
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.a.selected(), Some(addr(CLIENT)));

    // Same credentials again: not a restart.
    let c = client_creds();
    net.a.set_remote_credentials(&c.ufrag, &c.pwd, net.now);
    assert_eq!(net.a.selected(), Some(addr(CLIENT)));

    // The client restarts with new credentials; the bridge keeps its own.
    let fresh = Credentials::random();
    let now = net.now;
    net.a.set_remote_credentials(&fresh.ufrag, &fresh.pwd, now);
    assert_eq!(net.a.selected(), None);
    // Old-ufrag requests are now rejected.
    let b = bridge_creds();
    let old = client_request(
        "bridgeuf:clientuf",
        &b.pwd,
        [7; 12],
        Role::Controlled(1),
        false,
    );
    assert_eq!(
        net.a.handle_stun(addr(CLIENT), &old, now),
        Err(Error::UnknownUsername)
    );

    let mut client = IceAgent::new(client_config(), fresh, now);
    client.set_remote_credentials(&b.ufrag, &b.pwd, now);
    client.add_remote_candidate(addr(BRIDGE), 2_130_706_431, now);
    net.b = client;
    net.a.add_remote_candidate(addr(CLIENT), 2_130_706_431, now);
    let events_before = net.a_events.len();
    net.run_for(Duration::from_secs(2));
    assert_eq!(net.a.selected(), Some(addr(CLIENT)));
    assert_eq!(net.b.selected(), Some(addr(BRIDGE)));
    let new_events: Vec<Event> = net.a_events[events_before..]
        .iter()
        .map(|(_, e)| *e)
        .collect();
    assert!(new_events.contains(&Event::AddressValidated(addr(CLIENT))));
    assert!(new_events.contains(&Event::Selected(addr(CLIENT))));
    assert!(!new_events.contains(&Event::Failed));
}

#[test]
fn random_credentials_are_ice_chars_of_the_right_length() {
    let a = Credentials::random();
    let b = Credentials::random();
    assert_eq!(a.ufrag.len(), 8);
    assert_eq!(a.pwd.len(), 24);
    assert!(a
        .ufrag
        .chars()
        .chain(a.pwd.chars())
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '+' || ch == '/'));
    assert_ne!(a, b);
}

#[test]
fn role_conflict_error_response_switches_role_once_and_retries() {
    let now = Instant::now();
    let b = bridge_creds();
    let c = client_creds();
    let ckey = IntegrityKey::new(&c.pwd);
    let mut buf = [0u8; 548];
    for peer_request_first in [false, true] {
        let mut bridge = IceAgent::new(bridge_config(), b.clone(), now);
        bridge.set_remote_credentials(&c.ufrag, &c.pwd, now);
        bridge.add_remote_candidate(addr(CLIENT), 100, now);
        bridge.handle_timeout(now);
        let (_, n) = bridge.poll_transmit(&mut buf).unwrap();
        let check = Message::parse(&buf[..n]).unwrap();
        assert!(check.ice_controlling.is_some());
        let id = check.transaction_id;
        if peer_request_first {
            // The peer's own request wins the conflict first and makes us controlled.
            let req = client_request(
                "bridgeuf:clientuf",
                &b.pwd,
                [8; 12],
                Role::Controlling(u64::MAX),
                false,
            );
            bridge.handle_stun(addr(CLIENT), &req, now).unwrap();
            assert!(!bridge.is_controlling());
            while bridge.poll_transmit(&mut buf).is_some() {}
        }
        let n = stun::write_binding_error(&mut buf, &id, 487, "Role Conflict", &ckey).unwrap();
        bridge.handle_stun(addr(CLIENT), &buf[..n], now).unwrap();
        assert!(
            !bridge.is_controlling(),
            "487 to a controlling check means: be controlled"
        );
        // The check is retried in the new role after Ta.
        bridge.handle_timeout(now + Duration::from_millis(50));
        let mut retried = false;
        while let Some((to, n)) = bridge.poll_transmit(&mut buf) {
            let m = Message::parse(&buf[..n]).unwrap();
            if to == addr(CLIENT) && m.class == Class::Request {
                assert!(m.ice_controlled.is_some());
                assert_ne!(m.transaction_id, id);
                retried = true;
            }
        }
        assert!(retried);
    }
}

#[test]
fn nothing_is_selected_after_failure_until_restart() {
    let start = Instant::now();
    let mut bridge = IceAgent::new(bridge_config(), bridge_creds(), start);
    let (b, c) = (bridge_creds(), client_creds());
    bridge.set_remote_credentials(&c.ufrag, &c.pwd, start);
    let late = start + Duration::from_secs(15);
    bridge.handle_timeout(late);
    assert_eq!(events(&mut bridge), vec![Event::Failed]);
    bridge.handle_timeout(late + Duration::from_secs(20));
    assert_eq!(bridge.poll_event(), None, "Failed is reported once");
    // A late peer is still answered but no checks start.
    let req = client_request(
        "bridgeuf:clientuf",
        &b.pwd,
        [1; 12],
        Role::Controlled(1),
        false,
    );
    bridge.handle_stun(addr(CLIENT), &req, late).unwrap();
    let sent = drain(&mut bridge);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        Message::parse(&sent[0].1).unwrap().class,
        Class::SuccessResponse
    );
    bridge.handle_timeout(late + Duration::from_secs(1));
    assert!(drain(&mut bridge).is_empty());
    // An ICE restart starts over.
    let fresh = Credentials::random();
    bridge.set_remote_credentials(&fresh.ufrag, &fresh.pwd, late);
    bridge.add_remote_candidate(addr(CLIENT), 100, late);
    bridge.handle_timeout(late);
    let sent = drain(&mut bridge);
    assert_eq!(sent.len(), 1);
    assert_eq!(Message::parse(&sent[0].1).unwrap().class, Class::Request);
}
