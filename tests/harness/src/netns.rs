//! Network namespaces, so that tests and benchmarks touch no real network.
//!
//! - One namespace: [`rerun_in_own_netns`] re-runs the calling test alone inside a fresh network
//!   namespace with only `lo` up (`unshare -n`); [`in_own_netns`] is the same for any program
//!   (the benchmarks, the browser tests through the `in-own-netns` binary).
//! - Several hosts: [`Network`] puts each host in its own named namespace (`ip netns`) with its
//!   own address, all joined by veth pairs to a switch (a Linux bridge in a namespace of its
//!   own): a star around the switch, and a pair is a network of two hosts. Each host's link can
//!   be shaped in either direction with `tc … tbf` (this kernel has no `netem`: loss, delay and
//!   jitter must be emulated in user space) and cut and restored. Everything is removed when the
//!   network is dropped.
//!
//! Both need root. A test that builds a [`Network`] should itself run inside
//! [`rerun_in_own_netns`], so that nothing it does is seen from the machine's own namespace.

use std::ffi::OsStr;
use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{bail, Context};

/// Set (to `1`) in the environment of whatever [`in_own_netns`] runs.
pub const INSIDE: &str = "TUTTI_TEST_IN_NETNS";

/// Whether this process runs inside a namespace made by [`in_own_netns`].
pub fn inside_own_netns() -> bool {
    std::env::var_os(INSIDE).is_some()
}

/// A command that runs `program` in a fresh network namespace with only `lo` up (`unshare -n`,
/// then `ip link set lo up`), with [`INSIDE`] set; add its arguments and run it.
pub fn in_own_netns(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new("unshare");
    command
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
        ])
        .arg(program)
        .env(INSIDE, "1");
    command
}

/// Re-runs the calling test alone inside a fresh network namespace ([`in_own_netns`]) and
/// returns true in the parent, which then only reports the child's result (a failure inside
/// fails the test). Returns false when already inside, where the test body runs:
///
/// ```no_run
/// # fn a_test() {
/// if tutti_test_harness::netns::rerun_in_own_netns("a_test") {
///     return;
/// }
/// // ... the test, alone in its namespace
/// # }
/// ```
pub fn rerun_in_own_netns(test_name: &str) -> bool {
    if inside_own_netns() {
        return false;
    }
    let exe = std::env::current_exe().expect("test executable path");
    let status = in_own_netns(exe)
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .status()
        .expect("running unshare (util-linux) — the tests need root or CAP_SYS_ADMIN");
    assert!(
        status.success(),
        "{test_name} failed inside its network namespace: {status}"
    );
    true
}

/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/var/run/netns";
/// Every namespace a [`Network`] makes is named `tutti-PID-N-NAME`.
const NAME_PREFIX: &str = "tutti-";
/// The hosts' subnet, a /24: host `i` (from 0, in the order given) is `10.99.0.(i + 1)`.
const SUBNET: [u8; 3] = [10, 99, 0];
/// Each host's end of its link.
const HOST_DEVICE: &str = "eth0";
/// The Linux bridge in the switch's namespace.
const SWITCH_DEVICE: &str = "br0";

static NETWORKS: AtomicU32 = AtomicU32::new(0);

/// Several hosts, each in its own network namespace with its own address, joined by one link
/// each to a switch; see the module's documentation. Dropping it kills every process left in
/// its namespaces and deletes them (with them their links).
pub struct Network {
    /// The switch's namespace.
    switch: String,
    hosts: Vec<Host>,
    /// Every namespace made so far, the switch's first.
    namespaces: Vec<String>,
}

/// One host of a [`Network`]: its namespace, its address and its link to the switch.
#[derive(Clone, Debug)]
pub struct Host {
    name: String,
    namespace: String,
    switch: String,
    address: Ipv4Addr,
}

/// Which way a link is shaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the host to the switch (the host's uplink).
    Up,
    /// From the switch to the host (its downlink).
    Down,
}

/// A token-bucket cap: `tc qdisc … tbf rate RATE burst BURST latency LATENCY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub rate_kbit: u32,
    /// Bucket size: what may pass at once above the rate.
    pub burst_bytes: u32,
    /// How long a packet may wait in the queue before it is dropped.
    pub latency_ms: u32,
}

impl Shape {
    /// `rate_kbit`, with a 16 KiB bucket and 50 ms of queue.
    pub fn rate_kbit(rate_kbit: u32) -> Shape {
        Shape {
            rate_kbit,
            burst_bytes: 16 * 1024,
            latency_ms: 50,
        }
    }
}

impl Network {
    /// The hosts `names` (letters, digits and `-`, at most 15 characters), in this order at
    /// `10.99.0.1`, `10.99.0.2`, …, each linked to the switch. Namespaces left behind by a
    /// process that no longer runs (killed before it could drop its network) are removed first.
    pub fn new(names: &[&str]) -> anyhow::Result<Network> {
        if names.is_empty() || names.len() > 254 {
            bail!("a network has 1 to 254 hosts, not {}", names.len());
        }
        for (index, name) in names.iter().enumerate() {
            let valid = !name.is_empty()
                && name.len() <= 15
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !valid || *name == SWITCH_DEVICE || names[..index].contains(name) {
                bail!("host name {name:?}: unique, 1 to 15 letters, digits or '-', not {SWITCH_DEVICE}");
            }
        }
        remove_stale_namespaces();
        let prefix = format!(
            "{NAME_PREFIX}{}-{}-",
            std::process::id(),
            NETWORKS.fetch_add(1, Ordering::Relaxed)
        );
        let switch = format!("{prefix}switch");
        let mut network = Network {
            switch: switch.clone(),
            hosts: Vec::with_capacity(names.len()),
            namespaces: Vec::new(),
        };
        // Each namespace is recorded as soon as it exists: an error drops `network`, which
        // removes what was made.
        network.add_namespace(&switch)?;
        ip(&[
            "-n",
            &switch,
            "link",
            "add",
            "name",
            SWITCH_DEVICE,
            "type",
            "bridge",
        ])?;
        ip(&["-n", &switch, "link", "set", "dev", SWITCH_DEVICE, "up"])?;
        for (index, name) in names.iter().enumerate() {
            let namespace = format!("{prefix}{name}");
            network.add_namespace(&namespace)?;
            // Made directly in the two namespaces: the link never appears in the caller's.
            ip(&[
                "link",
                "add",
                "name",
                HOST_DEVICE,
                "netns",
                &namespace,
                "type",
                "veth",
                "peer",
                "name",
                name,
                "netns",
                &switch,
            ])?;
            ip(&[
                "-n",
                &switch,
                "link",
                "set",
                "dev",
                name,
                "master",
                SWITCH_DEVICE,
            ])?;
            ip(&["-n", &switch, "link", "set", "dev", name, "up"])?;
            let address = Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], index as u8 + 1);
            ip(&[
                "-n",
                &namespace,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                HOST_DEVICE,
            ])?;
            ip(&["-n", &namespace, "link", "set", "dev", HOST_DEVICE, "up"])?;
            network.hosts.push(Host {
                name: (*name).to_owned(),
                namespace,
                switch: switch.clone(),
                address,
            });
        }
        Ok(network)
    }

    fn add_namespace(&mut self, namespace: &str) -> anyhow::Result<()> {
        ip(&["netns", "add", namespace])?;
        self.namespaces.push(namespace.to_owned());
        ip(&["-n", namespace, "link", "set", "dev", "lo", "up"])
    }

    /// The host called `name`; panics if there is none.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts
            .iter()
            .find(|host| host.name == name)
            .unwrap_or_else(|| panic!("no host {name:?} in this network"))
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// The names (`ip netns list`) of every namespace of this network, the switch's first.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// The switch's namespace, where each host's link ends in a port named after the host.
    pub fn switch_namespace(&self) -> &str {
        &self.switch
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for namespace in self.namespaces.iter().rev() {
            if let Err(error) = remove_namespace(namespace) {
                eprintln!("removing network namespace {namespace}: {error:#}");
            }
        }
    }
}

impl Host {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its namespace's name (`ip netns list`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Its address on the network.
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// Runs `f` on a thread inside this host's namespace and returns what it returns. Sockets
    /// made in `f` stay in this namespace wherever they are used later; so do threads `f`
    /// spawns. (A socket still open when the network is dropped keeps its namespace, and the
    /// link in it, alive until it is closed.)
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
        let path = Path::new(NETNS_DIR).join(&self.namespace);
        let namespace = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        std::thread::scope(|scope| {
            let thread = scope.spawn(|| {
                // SAFETY: a valid descriptor of a network namespace; setns moves only this
                // thread, which the scope joins.
                if unsafe { libc::setns(namespace.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(std::io::Error::last_os_error())
                        .with_context(|| format!("entering {}", self.namespace));
                }
                Ok(f())
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// A command that runs `program` inside this host's namespace (`ip netns exec`); add its
    /// arguments and run it. Whatever still runs there when the network is dropped is killed.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.namespace])
            .arg(program);
        command
    }

    /// Caps the link one way (replacing an earlier cap that way).
    pub fn shape(&self, direction: Direction, shape: Shape) -> anyhow::Result<()> {
        let (namespace, device) = self.end(direction);
        tc(&[
            "-n",
            namespace,
            "qdisc",
            "replace",
            "dev",
            device,
            "root",
            "tbf",
            "rate",
            &format!("{}kbit", shape.rate_kbit),
            "burst",
            &shape.burst_bytes.to_string(),
            "latency",
            &format!("{}ms", shape.latency_ms),
        ])
    }

    /// Removes the cap one way.
    pub fn unshape(&self, direction: Direction) -> anyhow::Result<()> {
        let (namespace, device) = self.end(direction);
        tc(&["-n", namespace, "qdisc", "del", "dev", device, "root"])
    }

    /// Cuts the link: nothing passes either way until [`Host::restore`]. The switch's port goes
    /// down; the host's own interface stays up and keeps its address and routes (it sees its
    /// carrier gone, as with a pulled cable), so its sends vanish rather than fail.
    pub fn cut(&self) -> anyhow::Result<()> {
        ip(&["-n", &self.switch, "link", "set", "dev", &self.name, "down"])
    }

    /// Brings a cut link back.
    pub fn restore(&self) -> anyhow::Result<()> {
        ip(&["-n", &self.switch, "link", "set", "dev", &self.name, "up"])
    }

    /// The namespace and device whose egress is `direction`.
    fn end(&self, direction: Direction) -> (&str, &str) {
        match direction {
            Direction::Up => (&self.namespace, HOST_DEVICE),
            Direction::Down => (&self.switch, &self.name),
        }
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    run_tool("ip", args)
}

fn tc(args: &[&str]) -> anyhow::Result<()> {
    run_tool("tc", args)
}

/// Runs an iproute2 tool; an error carries the command line and what it printed.
fn run_tool(tool: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(tool)
        .args(args)
        .output()
        .with_context(|| format!("running {tool} (iproute2)"))?;
    if !output.status.success() {
        bail!(
            "{tool} {}: {} {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Kills what still runs in `namespace` (never this process) and deletes it.
fn remove_namespace(namespace: &str) -> anyhow::Result<()> {
    let pids = Command::new("ip")
        .args(["netns", "pids", namespace])
        .output()
        .context("running ip netns pids")?;
    for pid in String::from_utf8_lossy(&pids.stdout)
        .split_whitespace()
        .filter_map(|pid| pid.parse::<libc::pid_t>().ok())
        .filter(|pid| *pid as u32 != std::process::id())
    {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    ip(&["netns", "del", namespace])
}

/// Removes the namespaces of networks whose process is gone.
fn remove_stale_namespaces() {
    let Ok(list) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let Some(namespace) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = namespace
            .strip_prefix(NAME_PREFIX)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = remove_namespace(namespace);
        }
    }
}
