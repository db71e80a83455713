//! Debian packages a test needs, installed with apt-get when missing (before the test enters a
//! network namespace: there is no network inside).

use std::path::Path;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use anyhow::{bail, Context};

/// A test binary's tests run on parallel threads, and two apt-gets at once fail on dpkg's lock
/// (exit 100): one install at a time per process; another process's lock is waited for.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Installs `packages` (apt-get's arguments, e.g. `"--no-install-recommends ejabberd"`) unless
/// `probe`, a file they install, exists; then runs the shell command `then`, if any.
pub fn ensure(probe: &str, packages: &str, then: Option<&str>) -> anyhow::Result<()> {
    if Path::new(probe).exists() {
        return Ok(());
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    if Path::new(probe).exists() {
        return Ok(());
    }
    let mut script = format!(
        "apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get -o DPkg::Lock::Timeout=600 install -y -qq {packages}"
    );
    if let Some(then) = then {
        script = format!("{script} && {then}");
    }
    let status = Command::new("sh")
        .args(["-c", &script])
        .status()
        .context("running apt-get")?;
    if !status.success() {
        bail!("installing {packages} failed: {status}");
    }
    Ok(())
}
