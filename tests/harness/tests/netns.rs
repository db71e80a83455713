//! The several-hosts helper for real, inside the test's own network namespace: hosts reach
//! each other, a shaped link caps throughput, a cut link carries nothing until it is restored,
//! and nothing is left once the network is dropped.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use tutti_test_harness::netns::{rerun_in_own_netns, Direction, Network, Shape};

/// A datagram from `from` reaches `to` within `wait`.
fn delivered(from: &UdpSocket, to: &UdpSocket, wait: Duration) -> bool {
    let payload = format!("hello {}", rand_tag());
    from.send_to(payload.as_bytes(), to.local_addr().unwrap())
        .expect("sending a datagram");
    to.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = [0; 64];
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        match to.recv(&mut buffer) {
            Ok(n) if buffer[..n] == *payload.as_bytes() => return true,
            Ok(_) => continue, // an earlier datagram, delivered late
            Err(_) => return false,
        }
    }
    false
}

fn rand_tag() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Sends `bytes` over TCP from `sender` to `receiver` and returns the rate the receiver saw,
/// in kbit/s, from its first byte to the end.
fn tcp_rate_kbit(sender: TcpStream, receiver: &TcpListener, bytes: usize) -> f64 {
    let writer = std::thread::spawn(move || {
        let mut sender = sender;
        let chunk = vec![7_u8; 16 * 1024];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            sender.write_all(&chunk[..n]).expect("sending");
            left -= n;
        }
    });
    let (mut stream, _) = receiver.accept().expect("accepting");
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut received = stream.read(&mut buffer).expect("receiving");
    let first = Instant::now();
    while received < bytes {
        let n = stream.read(&mut buffer).expect("receiving");
        assert!(n > 0, "the connection ended after {received} bytes");
        received += n;
    }
    let elapsed = first.elapsed().as_secs_f64();
    writer.join().unwrap();
    received as f64 * 8.0 / 1000.0 / elapsed
}

fn netns_list() -> String {
    let output = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn hosts_talk_over_links_that_can_be_shaped_and_cut() {
    if rerun_in_own_netns("hosts_talk_over_links_that_can_be_shaped_and_cut") {
        return;
    }
    let network = Network::new(&["bridge", "alice", "bob"]).expect("making the network");
    let (bridge, alice, bob) = (
        network.host("bridge"),
        network.host("alice"),
        network.host("bob"),
    );
    assert_eq!(alice.address().to_string(), "10.99.0.2");

    // Each host is its own namespace with its own address.
    let output = alice
        .command("ip")
        .args(["-o", "-4", "addr", "show", "dev", "eth0"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("10.99.0.2/24"),
        "{output:?}"
    );
    let own_addresses = Command::new("ip")
        .args(["-o", "-4", "addr"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&own_addresses.stdout).contains("10.99.0."),
        "the test's own namespace got a host's address"
    );

    // UDP both ways, through the switch.
    let bind = |host: &tutti_test_harness::netns::Host| {
        let address = SocketAddr::from((host.address(), 0));
        host.run(move || UdpSocket::bind(address))
            .unwrap()
            .expect("binding in the host's namespace")
    };
    let (to_alice, to_bob, to_bridge) = (bind(alice), bind(bob), bind(bridge));
    assert!(delivered(&to_alice, &to_bob, Duration::from_secs(2)));
    assert!(delivered(&to_bob, &to_alice, Duration::from_secs(2)));
    assert!(delivered(&to_bridge, &to_bob, Duration::from_secs(2)));

    // A cut link carries nothing either way; the others still do; restored, it carries again.
    alice.cut().unwrap();
    assert!(!delivered(&to_alice, &to_bob, Duration::from_millis(300)));
    assert!(!delivered(&to_bob, &to_alice, Duration::from_millis(300)));
    assert!(delivered(&to_bridge, &to_bob, Duration::from_secs(2)));
    alice.restore().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !delivered(&to_alice, &to_bob, Duration::from_millis(200)) {
        assert!(
            Instant::now() < deadline,
            "the restored link carries nothing"
        );
    }
    assert!(delivered(&to_bob, &to_alice, Duration::from_secs(2)));

    // A tbf cap on alice's uplink: a TCP transfer runs at about the cap, and much faster
    // without it.
    const CAP_KBIT: u32 = 4000;
    const BYTES: usize = 1_000_000; // 2 s at the cap
    let listener = {
        let address = SocketAddr::from((bob.address(), 0));
        bob.run(move || TcpListener::bind(address))
            .unwrap()
            .unwrap()
    };
    let connect = || {
        let address = listener.local_addr().unwrap();
        alice
            .run(move || TcpStream::connect(address))
            .unwrap()
            .expect("connecting alice to bob")
    };
    let unshaped = tcp_rate_kbit(connect(), &listener, BYTES);
    alice
        .shape(Direction::Up, Shape::rate_kbit(CAP_KBIT))
        .unwrap();
    let shaped = tcp_rate_kbit(connect(), &listener, BYTES);
    eprintln!("alice → bob: {unshaped:.0} kbit/s unshaped, {shaped:.0} kbit/s under a {CAP_KBIT} kbit/s cap");
    let cap = f64::from(CAP_KBIT);
    assert!(
        (cap / 2.0..=cap * 1.5).contains(&shaped),
        "{shaped:.0} kbit/s under a {CAP_KBIT} kbit/s cap"
    );
    assert!(unshaped > cap * 5.0, "unshaped only {unshaped:.0} kbit/s");
    // The cap is one way: bob's uplink is not shaped, alice's cap lifts when removed.
    alice.unshape(Direction::Up).unwrap();
    assert!(tcp_rate_kbit(connect(), &listener, BYTES) > cap * 5.0);

    // Dropped (its sockets first, else they would keep their namespaces): no namespace and no
    // link is left.
    let namespaces = network.namespaces().to_vec();
    assert_eq!(namespaces.len(), 4);
    let listed = netns_list();
    assert!(
        namespaces.iter().all(|ns| listed.contains(ns.as_str())),
        "{listed}"
    );
    drop((to_alice, to_bob, to_bridge, listener));
    drop(network);
    let listed = netns_list();
    assert!(
        namespaces.iter().all(|ns| !listed.contains(ns.as_str())),
        "left behind: {listed}"
    );
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert_eq!(links.lines().count(), 1, "links besides lo: {links}");
}

#[test]
fn a_process_left_running_in_a_host_is_killed_with_the_network() {
    if rerun_in_own_netns("a_process_left_running_in_a_host_is_killed_with_the_network") {
        return;
    }
    let network = Network::new(&["a", "b"]).unwrap();
    let mut sleeper = network
        .host("b")
        .command("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    // `ip netns exec` has become `sleep` once it is listed in the namespace.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "pids", network.host("b").namespace()])
            .output()
            .unwrap()
            .stdout,
    )
    .contains(&sleeper.id().to_string())
    {
        assert!(Instant::now() < deadline, "sleep never ran in b");
        std::thread::sleep(Duration::from_millis(20));
    }
    let namespaces = network.namespaces().to_vec();
    drop(network);
    let status = sleeper.wait().unwrap();
    assert!(!status.success(), "{status}");
    let listed = netns_list();
    assert!(
        namespaces.iter().all(|ns| !listed.contains(ns.as_str())),
        "left behind: {listed}"
    );
}

#[test]
fn bad_host_names_are_refused() {
    for names in [
        &[][..],
        &["a", "a"],
        &["bad name"],
        &["br0"],
        &["sixteen-letters!"],
    ] {
        assert!(Network::new(names).is_err(), "{names:?}");
    }
}
