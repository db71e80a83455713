//! An ejabberd server (Debian's `ejabberd` 23.01) for the focus's end-to-end tests, as the other
//! server beside Prosody, from `tests/harness/ejabberd.yml.in` (which `scripts/stack.mjs` fills
//! for the browser tests too): the same domain, client port and MUC service name as the Prosody
//! configuration gives the tests (`DOMAIN`, `conference.DOMAIN`), plaintext on loopback,
//! ejabberd's own room defaults (semi-anonymous: the focus's room configuration must make real
//! JIDs visible), accounts registered with `ejabberdctl register` once it runs.
//!
//! ejabberd runs as its own system user (`ejabberdctl` switches to it when started as root),
//! so its directory is given to that user; its Erlang node is `ejabberd@localhost`, whose
//! `epmd` runs inside the test's network namespace.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// How long ejabberd may take to open its client port.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The configuration template (`tests/harness/ejabberd.yml.in`), which `scripts/stack.mjs`
/// fills too.
pub const TEMPLATE: &str = include_str!("../ejabberd.yml.in");

/// Installs Debian's ejabberd when `/usr/sbin/ejabberdctl` is missing (before entering a
/// network namespace), and stops and disables the service the package starts under systemd.
pub fn ensure_installed() -> anyhow::Result<()> {
    crate::apt::ensure(
        "/usr/sbin/ejabberdctl",
        "--no-install-recommends ejabberd",
        // The package starts its service where systemd runs: the tests run their own.
        Some("if [ -d /run/systemd/system ]; then systemctl disable --now ejabberd; fi"),
    )
}

/// A running ejabberd with its accounts; stopped (with the `epmd` daemon its node started), and
/// its directory removed, when dropped.
pub struct Ejabberd {
    dir: PathBuf,
    domain: String,
    child: Option<Child>,
}

impl Ejabberd {
    /// Writes the configuration into an emptied `dir`, starts ejabberd, waits until it serves
    /// clients on `c2s_port` and registers `accounts` (user, password) at `domain`.
    pub fn start(
        dir: impl Into<PathBuf>,
        domain: &str,
        c2s_port: u16,
        accounts: &[(&str, &str)],
    ) -> anyhow::Result<Ejabberd> {
        let dir = dir.into();
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["spool", "logs"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        let config = crate::prosody::fill(
            TEMPLATE,
            &[
                ("WRITER", "tutti-test-harness".to_owned()),
                ("DIR", dir.display().to_string()),
                ("DOMAIN", domain.to_owned()),
                ("C2S_PORT", c2s_port.to_string()),
            ],
        )?;
        std::fs::write(dir.join("ejabberd.yml"), config).context("writing ejabberd.yml")?;
        // ejabberd's Erlang resolver configuration, which ejabberdctl points at the config dir.
        std::fs::write(
            dir.join("inetrc"),
            "{lookup,[file,native]}.\n{file,hosts,\"/etc/hosts\"}.\n",
        )
        .context("writing inetrc")?;
        let status = Command::new("chown")
            .args(["-R", "ejabberd"])
            .arg(&dir)
            .status()
            .context("running chown")?;
        if !status.success() {
            bail!("giving {} to the ejabberd user: {status}", dir.display());
        }
        let mut server = Ejabberd {
            dir,
            domain: domain.to_owned(),
            child: None,
        };
        let child = server
            .ctl()
            .arg("foreground")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ejabberd")?;
        let child = server.child.insert(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", c2s_port)).is_err() {
            if let Some(status) = child.try_wait()? {
                server.child = None;
                bail!(
                    "ejabberd exited ({status}) before it opened its client port; see {}",
                    server.dir.join("logs").display()
                );
            }
            if Instant::now() > deadline {
                bail!("ejabberd did not open its client port {c2s_port} within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for (user, password) in accounts {
            server.register(user, password)?;
        }
        Ok(server)
    }

    /// `ejabberdctl` for this server's node, configuration and directories.
    fn ctl(&self) -> Command {
        let mut command = Command::new("ejabberdctl");
        command
            .arg("--config-dir")
            .arg(&self.dir)
            .arg("--config")
            .arg(self.dir.join("ejabberd.yml"))
            .arg("--spool")
            .arg(self.dir.join("spool"))
            .arg("--logs")
            .arg(self.dir.join("logs"))
            .args(["--node", "ejabberd@localhost"]);
        command
    }

    /// Registers `user@domain` (`ejabberdctl register`, on the running node).
    pub fn register(&self, user: &str, password: &str) -> anyhow::Result<()> {
        let output = self
            .ctl()
            .args(["register", user, &self.domain, password])
            .output()
            .context("running ejabberdctl register")?;
        if !output.status.success() {
            bail!(
                "registering {user}: {}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        Ok(())
    }
}

impl Drop for Ejabberd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = self.ctl().arg("stop").output();
            // Down once `ejabberdctl status` no longer reaches the node; it writes to its
            // directory until then.
            let deadline = Instant::now() + Duration::from_secs(15);
            while self
                .ctl()
                .arg("status")
                .output()
                .is_ok_and(|output| output.status.success())
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            let _ = child.kill();
            let _ = child.wait();
            // The Erlang port mapper the node started as a daemon, in this namespace.
            let _ = Command::new("epmd").arg("-kill").output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
