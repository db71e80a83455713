//! Test plumbing written once, for the bridge's and the focus's end-to-end tests, the
//! benchmarks (`bench/`) and the scripts:
//!
//! - [`apt`]: the Debian packages a test needs, installed when missing, one apt-get at a time;
//! - [`netns`]: a test (or any program) re-run inside a fresh network namespace with only `lo`
//!   up, and [`netns::Network`], several hosts in their own namespaces on links that can be
//!   shaped (`tc … tbf`) and cut;
//! - [`certs`]: a test CA with bridge and focus certificates, and the ones to be refused
//!   (expired, from another CA), for the gRPC control plane's mutual TLS;
//! - [`dns`]: a real DNS server (dnsmasq) with records the test sets, and a program run with
//!   it as its resolver;
//! - [`prosody`]: the one Prosody configuration (`prosody.cfg.lua.in`, which
//!   `scripts/stack.mjs` fills as well), and a Prosody process with its accounts;
//! - [`ejabberd`]: Debian's ejabberd as the other XMPP server, with the same domain, port and
//!   MUC service for the focus's tests.
//!
//! The binary `in-own-netns PROGRAM [ARG...]` runs a program in a fresh network namespace for
//! the shell scripts (`bench/bridge`, `bench/focus`, `tests/browser/run`).

pub mod apt;
pub mod certs;
pub mod dns;
pub mod ejabberd;
pub mod netns;
pub mod prosody;
