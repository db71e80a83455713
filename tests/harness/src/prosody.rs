//! The one Prosody configuration of the project, and a Prosody process to run it.
//!
//! The configuration is `tests/harness/prosody.cfg.lua.in` ([`TEMPLATE`]): everything the local
//! stack (`./scripts/up`, the browser tests), the focus's end-to-end tests and the focus
//! benchmark need, with `{{NAME}}` or `{{NAME=default}}` where they differ. This module fills it
//! from a [`Config`]; `scripts/stack.mjs` reads the same file and fills it the same way (it also
//! sets `HTTP_PORT` for the demo page and the WebSocket, and logs to a file). Placeholders:
//!
//! | name | value |
//! |---|---|
//! | `WRITER` | who wrote the file, for its first line |
//! | `DIR` | the run directory: pid file, `prosody-data/`, `certs/`, `www/` (the stack's page) |
//! | `DOMAIN` | the focus's (and test users') host; guests at `guest.DOMAIN`, rooms at `conference.DOMAIN` |
//! | `C2S_PORT` | the client port on 127.0.0.1 |
//! | `HTTP_PORT` | the HTTP port (page, `/xmpp-websocket`, BOSH at `/http-bind`) or `nil` (default): none |
//! | `STARTTLS` | `true`: offer STARTTLS with `certs/DOMAIN.crt` and `.key`; default `false` |
//! | `LOG_LEVEL`, `LOG_TO` | default `warn` to `*stderr` |
//! | `GC_THRESHOLD`, `GC_SPEED` | Lua's incremental collector; default 200 and 200 |
//! | `ROOM_LOCKING`, `PUBLIC_JIDS` | default `false` and `true`: rooms open at once, real JIDs shown |
//! | `MAX_HISTORY` | cap on the room history a joiner gets; default `nil`, none |

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// The configuration template (`tests/harness/prosody.cfg.lua.in`).
pub const TEMPLATE: &str = include_str!("../prosody.cfg.lua.in");

/// How long Prosody may take to open its client port.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Fills `template`'s placeholders: `{{NAME}}` with the value `values` gives for NAME, which
/// it must; `{{NAME=default}}` with that value, or `default` when there is none. A value for a
/// name the template does not have is an error too.
pub fn fill(template: &str, values: &[(&str, String)]) -> anyhow::Result<String> {
    let mut filled = String::with_capacity(template.len());
    let mut used = vec![false; values.len()];
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        filled.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").context("a '{{' without its '}}'")?;
        let (name, default) = match after[..end].split_once('=') {
            Some((name, default)) => (name, Some(default)),
            None => (&after[..end], None),
        };
        match values.iter().position(|(given, _)| *given == name) {
            Some(index) => {
                used[index] = true;
                filled.push_str(&values[index].1);
            }
            None => filled.push_str(default.with_context(|| format!("no value for {name}"))?),
        }
        rest = &after[end + 2..];
    }
    filled.push_str(rest);
    if let Some(index) = used.iter().position(|used| !used) {
        bail!("the template has no {}", values[index].0);
    }
    Ok(filled)
}

/// Prosody's Lua garbage collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gc {
    /// The incremental collector at its own pace (threshold 200, speed 200): what the stack and
    /// the tests run.
    Tuned,
    /// Prosody 0.12's own setting (threshold 105, speed 500): a cycle every 5 % of heap growth.
    ProsodyDefault,
}

/// What differs between the configurations the Rust side writes.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the configuration (`prosody.cfg.lua`), the pid file, Prosody's data
    /// (`prosody-data/`) and certificates (`certs/`) go.
    pub dir: PathBuf,
    pub domain: String,
    /// Client port, on 127.0.0.1.
    pub c2s_port: u16,
    /// Offer STARTTLS, with a certificate for `domain` issued by a test CA (`Prosody::test_ca`).
    pub starttls: bool,
    /// Rooms open at once with real JIDs shown (what lib-jitsi-meet needs); false: Prosody's
    /// defaults (locked until their owner configures them, real JIDs for moderators only).
    pub open_rooms: bool,
    /// Cap on the room history a joiner gets; None: none.
    pub max_history: Option<u32>,
    pub gc: Gc,
}

impl Config {
    /// Domain `localhost`, client port 5222, plaintext only, open rooms, no history cap, the
    /// tuned collector.
    pub fn new(dir: impl Into<PathBuf>) -> Config {
        Config {
            dir: dir.into(),
            domain: "localhost".to_owned(),
            c2s_port: 5222,
            starttls: false,
            open_rooms: true,
            max_history: None,
            gc: Gc::Tuned,
        }
    }

    /// Where anonymous guests log in.
    pub fn guest_domain(&self) -> String {
        format!("guest.{}", self.domain)
    }

    /// The MUC service.
    pub fn muc_domain(&self) -> String {
        format!("conference.{}", self.domain)
    }

    /// The configuration file's text.
    pub fn render(&self) -> String {
        let mut values = vec![
            ("WRITER", "tests/harness/src/prosody.rs".to_owned()),
            ("DIR", self.dir.display().to_string()),
            ("DOMAIN", self.domain.clone()),
            ("C2S_PORT", self.c2s_port.to_string()),
            ("STARTTLS", self.starttls.to_string()),
        ];
        if !self.open_rooms {
            values.push(("ROOM_LOCKING", "true".to_owned()));
            values.push(("PUBLIC_JIDS", "false".to_owned()));
        }
        if let Some(max) = self.max_history {
            values.push(("MAX_HISTORY", max.to_string()));
        }
        if self.gc == Gc::ProsodyDefault {
            values.push(("GC_THRESHOLD", "105".to_owned()));
            values.push(("GC_SPEED", "500".to_owned()));
        }
        fill(TEMPLATE, &values).expect("prosody.cfg.lua.in has every placeholder Config fills")
    }
}

/// Installs Debian's Prosody when `/usr/bin/prosody` is missing (before entering a network
/// namespace, which has no route to the package registry).
pub fn ensure_installed() -> anyhow::Result<()> {
    crate::apt::ensure("/usr/bin/prosody", "prosody", None)
}

/// A Prosody server of one [`Config`]: configured (and its accounts registered) first, then
/// started; stopped, and its directory removed, when dropped.
pub struct Prosody {
    config: Config,
    path: PathBuf,
    child: Option<Child>,
}

impl Prosody {
    /// Writes the configuration into an emptied `config.dir` (with `starttls`, a test CA and
    /// the certificate it issued for the domain too). Prosody does not run yet.
    pub fn configure(config: Config) -> anyhow::Result<Prosody> {
        let dir = &config.dir;
        let _ = std::fs::remove_dir_all(dir);
        for sub in ["prosody-data", "certs"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        if config.starttls {
            issue_certificate(&dir.join("certs"), &config.domain)?;
        }
        let path = dir.join("prosody.cfg.lua");
        std::fs::write(&path, config.render())
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Prosody {
            config,
            path,
            child: None,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration file.
    pub fn config_path(&self) -> &Path {
        &self.path
    }

    /// The test CA's certificate, which issued the domain's (with `starttls`).
    pub fn test_ca(&self) -> PathBuf {
        self.config.dir.join("certs").join("ca.pem")
    }

    /// Registers the account `user@domain` (`prosodyctl register`).
    pub fn register(&self, user: &str, password: &str) -> anyhow::Result<()> {
        // What prosodyctl prints (a banner about optional Lua libraries) goes to stderr, not
        // into the stdout of a benchmark that prints one JSON line.
        let output = Command::new("prosodyctl")
            .arg("--config")
            .arg(&self.path)
            .args(["register", user, &self.config.domain, password])
            .stdin(Stdio::null())
            .output()
            .context("running prosodyctl")?;
        eprint!("{}", String::from_utf8_lossy(&output.stdout));
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        if !output.status.success() {
            bail!("registering {user}: {}", output.status);
        }
        Ok(())
    }

    /// Starts Prosody and waits until its client port is open (it keeps its accounts and data
    /// from an earlier run of the same configuration).
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("prosody is already running");
        }
        let child = Command::new("prosody")
            .arg("--config")
            .arg(&self.path)
            .arg("-F")
            .stdout(Stdio::null())
            .spawn()
            .context("starting prosody")?;
        let child = self.child.insert(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.config.c2s_port)).is_err() {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                bail!("prosody exited ({status}) before it opened its client port");
            }
            if Instant::now() > deadline {
                self.stop();
                bail!(
                    "prosody did not open its client port {} within {START_TIMEOUT:?}",
                    self.config.c2s_port
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Kills Prosody, as a crash would; [`Prosody::start`] brings it back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops Prosody as an administrator would (SIGTERM): it closes every client's stream with a
    /// `system-shutdown` stream error, then exits; waits for that (10 s at most, then kills it).
    pub fn shut_down(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("prosody is not running");
        };
        // SAFETY: kill(2) with the pid of a child this struct owns and has not reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("prosody did not exit within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Prosody's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.config.dir);
    }
}

/// A test CA (`ca.pem`) and a certificate for `domain` issued by it (`DOMAIN.crt`, `.key`),
/// made with the openssl tool (Prosody's Debian package depends on it).
fn issue_certificate(certs: &Path, domain: &str) -> anyhow::Result<()> {
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(certs)
            .output()
            .context("running openssl")?;
        if !output.status.success() {
            bail!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=Tutti test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ])?;
    std::fs::write(
        certs.join("server.ext"),
        format!("subjectAltName=DNS:{domain}\nbasicConstraints=CA:FALSE\n"),
    )?;
    let key = format!("{domain}.key");
    let crt = format!("{domain}.crt");
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        &format!("/CN={domain}"),
        "-keyout",
        &key,
        "-out",
        "server.csr",
    ])?;
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        &crt,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_take_values_or_their_defaults() {
        let template = "a = {{A}}; b = {{B=nil}}; c = {{C=x}}";
        let filled = fill(template, &[("A", "1".to_owned()), ("C", "2".to_owned())]).unwrap();
        assert_eq!(filled, "a = 1; b = nil; c = 2");
        let missing = fill(template, &[]).unwrap_err().to_string();
        assert!(missing.contains("no value for A"), "{missing}");
        let unknown = fill("{{A}}", &[("A", "1".to_owned()), ("Z", "2".to_owned())]);
        assert!(unknown.unwrap_err().to_string().contains("no Z"));
        assert!(fill("{{A", &[]).is_err());
    }

    #[test]
    fn placeholder_names_are_what_stack_mjs_reads() {
        // scripts/stack.mjs matches names with [A-Z0-9_]+.
        for piece in TEMPLATE.split("{{").skip(1) {
            let name = piece.split("}}").next().unwrap().split('=').next().unwrap();
            assert!(
                !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "placeholder {name:?}"
            );
        }
    }

    /// Asserts that `config` has each of `lines` (trimmed) as a line.
    fn assert_lines(config: &str, lines: &[&str]) {
        for line in lines {
            assert!(
                config.lines().any(|have| have.trim() == *line),
                "no line {line:?} in:\n{config}"
            );
        }
    }

    #[test]
    fn the_default_configuration() {
        let config = Config::new("/tmp/run").render();
        assert!(!config.contains("{{"), "{config}");
        assert!(config.starts_with(
            "-- Prosody for Tutti's local stack or a test, written by tests/harness/src/prosody.rs"
        ));
        assert_lines(
            &config,
            &[
                "c2s_ports = { 5222 }",
                r#"data_path = "/tmp/run/prosody-data""#,
                "local http_port = nil",
                "local starttls = false",
                r#"log = { warn = "*stderr" }"#,
                r#"gc = { mode = "incremental"; threshold = 200; speed = 200 }"#,
                r#"VirtualHost "localhost""#,
                r#"VirtualHost "guest.localhost""#,
                r#"authentication = "anonymous""#,
                r#"Component "conference.localhost" "muc""#,
                "muc_room_locking = false",
                "muc_room_default_public_jids = true",
                "max_history_messages = nil",
            ],
        );
    }

    #[test]
    fn every_setting_reaches_the_file() {
        let config = Config {
            domain: "example.test".to_owned(),
            c2s_port: 15222,
            starttls: true,
            open_rooms: false,
            max_history: Some(0),
            gc: Gc::ProsodyDefault,
            ..Config::new("/tmp/run")
        };
        assert_eq!(config.muc_domain(), "conference.example.test");
        assert_eq!(config.guest_domain(), "guest.example.test");
        assert_lines(
            &config.render(),
            &[
                "c2s_ports = { 15222 }",
                "local starttls = true",
                r#"ssl = { certificate = "/tmp/run/certs/example.test.crt"; key = "/tmp/run/certs/example.test.key" }"#,
                r#"gc = { mode = "incremental"; threshold = 105; speed = 500 }"#,
                r#"Component "conference.example.test" "muc""#,
                "muc_room_locking = true",
                "muc_room_default_public_jids = false",
                "max_history_messages = 0",
            ],
        );
    }
}
