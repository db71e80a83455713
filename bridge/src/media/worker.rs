//! The media worker: one thread that owns the UDP socket, the clock and a [`Core`]. Its loop is
//! the whole I/O shell around the sans-IO core: receive a batch, hand each datagram to the
//! core, apply control commands, run the core's timers, send the batch the core wrote. Nothing
//! here is shared with another thread except the published snapshot.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::mpsc::{Receiver, Sender};
use tutti_dtls::Certificate;

use crate::control::COMMAND_QUEUE;

use super::core::Core;
use super::stats::{DropReason, SharedSnapshot, Snapshot};
use super::udp::{self, RecvBatch, SendBatch};
use super::{Command, EndpointSettings, WorkerOutput};

/// Datagrams per recvmmsg call.
const RECV_BATCH: usize = 64;
/// Datagrams per sendmmsg call (a keyframe fanned out to many receivers fills several).
const SEND_BATCH: usize = 256;
/// Longest sleep in recvmmsg: bounds timer and command latency (the core's timers are due at
/// most every few milliseconds).
const POLL_INTERVAL: Duration = Duration::from_millis(5);
const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

pub struct WorkerHandle {
    pub commands: Sender<Command>,
    pub media_address: SocketAddr,
    pub thread: JoinHandle<()>,
}

/// Starts the worker. Its commands wait in a queue of [`COMMAND_QUEUE`]; its events go to
/// `events`, a bounded queue it never waits on: an event that finds it full is dropped and
/// counted in `events_dropped`.
pub fn spawn(
    media_address: SocketAddr,
    settings: EndpointSettings,
    cert: Certificate,
    events: Sender<WorkerOutput>,
    events_dropped: Counter,
    snapshot: SharedSnapshot,
) -> io::Result<WorkerHandle> {
    let socket = udp::bind(media_address, POLL_INTERVAL)?;
    let media_address = socket.local_addr()?;
    let (commands, command_rx) = tokio::sync::mpsc::channel(COMMAND_QUEUE);
    let thread = std::thread::Builder::new()
        .name("media-worker".into())
        .spawn(move || {
            let worker = Worker {
                recv: RecvBatch::new(RECV_BATCH),
                out: SendBatch::new(&socket, SEND_BATCH),
                socket,
                commands: command_rx,
                events,
                events_dropped,
                snapshot,
                core: Core::new(cert, settings, rand::random(), Instant::now()),
            };
            worker.run();
        })?;
    Ok(WorkerHandle {
        commands,
        media_address,
        thread,
    })
}

struct Worker {
    socket: UdpSocket,
    recv: RecvBatch,
    out: SendBatch,
    commands: Receiver<Command>,
    events: Sender<WorkerOutput>,
    events_dropped: Counter,
    snapshot: SharedSnapshot,
    core: Core,
}

impl Worker {
    fn run(mut self) {
        let fd = self.socket.as_raw_fd();
        let start = Instant::now();
        let mut next_publish = start;
        let mut cpu = CpuMeter::new(start);
        loop {
            let received = match self.recv.recv(fd) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "recvmmsg failed");
                    0
                }
            };
            let now = Instant::now();
            for i in 0..received {
                let datagram = self.recv.get(i);
                // A datagram the kernel cut to the slot is longer than the slot.
                let len = if datagram.truncated {
                    datagram.buf.len() + 1
                } else {
                    datagram.len
                };
                match datagram.from {
                    Some(from) => {
                        self.core
                            .handle_datagram(now, from, datagram.buf, len, &mut self.out)
                    }
                    None => self.core.count_drop(DropReason::Unrecognized),
                }
            }
            loop {
                match self.commands.try_recv() {
                    Ok(command) => self.core.handle_command(now, command, &mut self.out),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            if now >= self.core.poll_timeout() {
                self.core.handle_timeout(now, &mut self.out);
            }
            self.out.flush();
            for _ in 0..std::mem::take(&mut self.out.failed) {
                self.core.count_drop(DropReason::SendFailed);
            }
            while let Some(event) = self.core.poll_event() {
                self.emit(WorkerOutput::Endpoint(event));
            }
            while let Some(forwarded) = self.core.poll_forwarded() {
                self.emit(WorkerOutput::Forwarded(forwarded));
            }
            while let Some(stats) = self.core.poll_connection_stats() {
                self.emit(WorkerOutput::ConnectionStats(stats));
            }
            while let Some(notice) = self.core.poll_channel_notice() {
                self.emit(WorkerOutput::Channel(notice));
            }
            if now >= next_publish {
                self.publish(cpu.busy_fraction(now));
                next_publish = now + PUBLISH_INTERVAL;
            }
        }
    }

    /// Hands an event to the control plane, never waiting: a full queue drops it (counted).
    fn emit(&self, output: WorkerOutput) {
        if let Err(TrySendError::Full(_)) = self.events.try_send(output) {
            self.events_dropped.inc();
        }
    }

    fn publish(&self, busy: Option<f64>) {
        let core = &self.core;
        let (idle_endpoint_bytes, connected_endpoint_bytes) = core.endpoint_bytes();
        if let Ok(mut snapshot) = self.snapshot.lock() {
            let worker_busy = busy.unwrap_or(snapshot.worker_busy);
            *snapshot = Snapshot {
                counters: core.counters().clone(),
                conferences: core.conferences() as u64,
                endpoints: core.endpoints() as u64,
                allocations: core.allocations(),
                endpoint_state_bytes: core.state_bytes() as u64,
                idle_endpoint_bytes: idle_endpoint_bytes as u64,
                connected_endpoint_bytes: connected_endpoint_bytes as u64,
                worker_busy,
            };
        }
    }
}

/// The worker thread's CPU use over about a second (CLOCK_THREAD_CPUTIME_ID).
struct CpuMeter {
    since: Instant,
    cpu_since: Duration,
}

impl CpuMeter {
    fn new(now: Instant) -> CpuMeter {
        CpuMeter {
            since: now,
            cpu_since: thread_cpu_time(),
        }
    }

    fn busy_fraction(&mut self, now: Instant) -> Option<f64> {
        let wall = now.duration_since(self.since);
        if wall < Duration::from_secs(1) {
            return None;
        }
        let cpu = thread_cpu_time();
        let busy = cpu.saturating_sub(self.cpu_since).as_secs_f64() / wall.as_secs_f64();
        self.since = now;
        self.cpu_since = cpu;
        Some(busy)
    }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
