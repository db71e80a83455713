//! The steady-state packet path (answering checks, consent checks and their responses) does not
//! allocate. A counting global allocator observes this test binary, which holds one test only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tutti_ice::stun::{BindingRequest, Role};
use tutti_ice::{AgentConfig, Credentials, Event, IceAgent};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn creds(ufrag: &str, pwd: &str) -> Credentials {
    Credentials {
        ufrag: ufrag.to_owned(),
        pwd: pwd.to_owned(),
    }
}

/// Moves every queued datagram between the two agents (others are lost); returns how many
/// were sent.
fn exchange(
    a: &mut IceAgent,
    a_addr: SocketAddr,
    b: &mut IceAgent,
    b_addr: SocketAddr,
    now: Instant,
    buf: &mut [u8; 548],
) -> usize {
    let mut moved = 0;
    loop {
        let mut any = false;
        while let Some((to, n)) = a.poll_transmit(buf) {
            if to == b_addr {
                b.handle_stun(a_addr, &buf[..n], now).unwrap();
            }
            any = true;
            moved += 1;
        }
        while let Some((to, n)) = b.poll_transmit(buf) {
            if to == a_addr {
                a.handle_stun(b_addr, &buf[..n], now).unwrap();
            }
            any = true;
            moved += 1;
        }
        if !any {
            return moved;
        }
    }
}

#[test]
fn steady_state_does_not_allocate() {
    let (bridge_addr, client_addr): (SocketAddr, SocketAddr) = (
        "127.0.0.1:10000".parse().unwrap(),
        "127.0.0.1:5000".parse().unwrap(),
    );
    let bc = creds("bridgeuf", "bridgePasswordBridgePass");
    let cc = creds("clientuf", "clientPasswordClientPass");
    let mut now = Instant::now();
    let mut bridge = IceAgent::new(AgentConfig::default(), bc.clone(), now);
    let mut client = IceAgent::new(
        AgentConfig {
            controlling: false,
            ..AgentConfig::default()
        },
        cc.clone(),
        now,
    );
    bridge.set_remote_credentials(&cc.ufrag, &cc.pwd, now);
    bridge.add_remote_candidate(client_addr, 100, now);
    client.set_remote_credentials(&bc.ufrag, &bc.pwd, now);
    client.add_remote_candidate(bridge_addr, 100, now);
    let mut buf = [0u8; 548];
    let tick = |agent: &mut IceAgent, now: Instant| agent.handle_timeout(now);
    for _ in 0..200 {
        exchange(
            &mut bridge,
            bridge_addr,
            &mut client,
            client_addr,
            now,
            &mut buf,
        );
        now += Duration::from_millis(50);
        tick(&mut bridge, now);
        tick(&mut client, now);
    }
    let selected: Vec<Event> = std::iter::from_fn(|| bridge.poll_event()).collect();
    assert!(selected.contains(&Event::Selected(client_addr)));
    while client.poll_event().is_some() {}

    // A browser-style check to the bridge from a second address of the client (learned as
    // peer-reflexive), reused every round.
    let other_addr: SocketAddr = "127.0.0.1:6000".parse().unwrap();
    let mut request = [0u8; 548];
    let request_len = BindingRequest {
        transaction_id: [5; 12],
        username: "bridgeuf:clientuf",
        password: &bc.pwd,
        priority: 100,
        role: Role::Controlled(1),
        use_candidate: false,
    }
    .encode(&mut request)
    .unwrap();

    bridge
        .handle_stun(other_addr, &request[..request_len], now)
        .unwrap();
    exchange(
        &mut bridge,
        bridge_addr,
        &mut client,
        client_addr,
        now,
        &mut buf,
    );
    assert_eq!(
        bridge.poll_event(),
        Some(Event::AddressValidated(other_addr))
    );

    // The counter itself works.
    COUNTING.store(true, Ordering::SeqCst);
    drop(std::hint::black_box(Vec::<u8>::with_capacity(16)));
    COUNTING.store(false, Ordering::SeqCst);
    assert_eq!(ALLOCATIONS.swap(0, Ordering::SeqCst), 1);

    COUNTING.store(true, Ordering::SeqCst);
    let mut moved = 0;
    for _ in 0..100 {
        now += Duration::from_secs(1);
        tick(&mut bridge, now);
        tick(&mut client, now);
        bridge
            .handle_stun(other_addr, &request[..request_len], now)
            .unwrap();
        moved += exchange(
            &mut bridge,
            bridge_addr,
            &mut client,
            client_addr,
            now,
            &mut buf,
        );
    }
    COUNTING.store(false, Ordering::SeqCst);
    let allocations = ALLOCATIONS.load(Ordering::SeqCst);
    // 100 answers plus consent checks (and their answers) every ~5 s from both sides.
    assert!(moved >= 100 + 2 * 2 * 15, "only {moved} datagrams moved");
    assert_eq!(bridge.poll_event(), None, "no timeout while consent flows");
    assert_eq!(allocations, 0, "{allocations} allocations in steady state");
}
