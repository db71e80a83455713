//! A real DNS server for tests of discovery by name: Debian's `dnsmasq` (package
//! `dnsmasq-base`: the binary, no system service), answering from a hosts file of its own and
//! nothing else (no upstream, no `/etc/hosts`), on 127.0.0.1:53 of the namespace it is started
//! in. A program reaches it through a `resolv.conf` of its own
//! ([`Dnsmasq::resolv_conf`], bind-mounted in a private mount namespace by
//! [`with_resolv_conf`]), so nothing on the machine changes.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// Installs `dnsmasq-base` with apt-get when `/usr/sbin/dnsmasq` is missing (call it before
/// entering a network namespace: there is no network inside).
pub fn ensure_installed() -> anyhow::Result<()> {
    crate::apt::ensure(DNSMASQ, "dnsmasq-base", None)
}

/// A dnsmasq answering A records from its hosts file; stopped, and its directory removed, when
/// dropped.
pub struct Dnsmasq {
    dir: PathBuf,
    child: Child,
}

impl Dnsmasq {
    /// Starts dnsmasq on 127.0.0.1:53 (of the calling thread's network namespace) with `records`
    /// (name, address; a name may have several) and waits until it answers.
    pub fn start(dir: &Path, records: &[(&str, Ipv4Addr)]) -> anyhow::Result<Dnsmasq> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(
            dir.join("resolv.conf"),
            "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n",
        )?;
        // Written before it starts: a SIGHUP before dnsmasq handles it would end it.
        std::fs::write(dir.join("hosts"), hosts_lines(records))?;
        let child = Command::new(DNSMASQ)
            .arg("--keep-in-foreground")
            .args(["--no-resolv", "--no-hosts", "--no-poll"])
            .args([
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--port=53",
            ])
            .arg(format!("--addn-hosts={}", dir.join("hosts").display()))
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
            .args(["--local-ttl=0", "--log-facility=-", "--user=root"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting dnsmasq")?;
        let mut dnsmasq = Dnsmasq {
            dir: dir.to_owned(),
            child,
        };
        dnsmasq.wait_listening()?;
        Ok(dnsmasq)
    }

    /// A `resolv.conf` that names this server.
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    /// Adds records and has dnsmasq read its hosts file again (SIGHUP).
    pub fn add(&mut self, records: &[(&str, Ipv4Addr)]) -> anyhow::Result<()> {
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.join("hosts"))?
            .write_all(hosts_lines(records).as_bytes())?;
        // SAFETY: kill(2) on the pid of a child this process started and has not reaped.
        if unsafe { libc::kill(self.child.id() as i32, libc::SIGHUP) } != 0 {
            return Err(std::io::Error::last_os_error()).context("SIGHUP to dnsmasq");
        }
        Ok(())
    }

    fn wait_listening(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("dnsmasq exited: {status}");
            }
            let listening = std::net::UdpSocket::bind("127.0.0.1:53").is_err();
            if listening {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("dnsmasq did not listen on 127.0.0.1:53 within 5 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn hosts_lines(records: &[(&str, Ipv4Addr)]) -> String {
    records
        .iter()
        .map(|(name, address)| format!("{address} {name}\n"))
        .collect()
}

/// A command that runs `program` with `resolv_conf` bind-mounted over `/etc/resolv.conf` in a
/// mount namespace of its own (`unshare --mount`, private propagation): only that process
/// sees it. Add the program's arguments and environment, then run it.
pub fn with_resolv_conf(resolv_conf: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("unshare");
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            "mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"",
        ])
        .arg(resolv_conf)
        .arg(program);
    command
}
