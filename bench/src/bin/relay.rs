//! `bench-relay`: the benchmark's baseline, a plain UDP relay. It binds 127.0.0.1:0, prints
//! the bound address on one line, reads its routes from stdin until EOF (one line per source:
//! `SOURCE DEST DEST ...`, and lines `drop SSRC SSRC ...` naming RTP streams it must not
//! forward), then forwards every RTP datagram from a source to each of its destinations,
//! forever, but for RTCP and the dropped SSRCs. It uses the bridge's own batched I/O
//! (`tutti_bridge::media::udp`, same batch sizes as the media worker) and nothing else: no ICE,
//! no crypto, no RTCP. The dropped SSRCs are the publishers' simulcast layers above the first,
//! which the bridge receives but forwards no one in the benchmark, so the relay forwards what
//! the bridge forwards; RTCP is the receivers' transport-cc feedback, which it takes in and
//! ignores.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

use anyhow::Context;
use rustc_hash::{FxHashMap, FxHashSet};
use tutti_bridge::media::outbox::Outbox;
use tutti_bridge::media::udp::{self, RecvBatch, SendBatch};
use tutti_rtp::rtp::is_rtcp;

/// The media worker's batch sizes (bridge/src/media/worker.rs).
const RECV_BATCH: usize = 64;
const SEND_BATCH: usize = 256;
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// An RTP packet's SSRC (0 for a datagram too short to have one).
fn ssrc(packet: &[u8]) -> u32 {
    packet
        .get(8..12)
        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn main() -> anyhow::Result<()> {
    let socket = udp::bind(SocketAddr::from(([127, 0, 0, 1], 0)), POLL_INTERVAL)
        .context("binding the relay socket")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", socket.local_addr()?)?;
        stdout.flush()?;
    }
    let mut routes: FxHashMap<SocketAddr, Vec<SocketAddr>> = FxHashMap::default();
    let mut dropped: FxHashSet<u32> = FxHashSet::default();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut fields = line.split_whitespace();
        let Some(source) = fields.next() else {
            continue;
        };
        if source == "drop" {
            for ssrc in fields {
                dropped.insert(ssrc.parse().context("dropped SSRC")?);
            }
            continue;
        }
        let source: SocketAddr = source.parse().context("route source")?;
        let dests = fields
            .map(str::parse)
            .collect::<Result<Vec<SocketAddr>, _>>()
            .context("route destination")?;
        routes.entry(source).or_default().extend(dests);
    }
    let fd = socket.as_raw_fd();
    let mut recv = RecvBatch::new(RECV_BATCH);
    let mut out = SendBatch::new(&socket, SEND_BATCH);
    loop {
        let received = recv.recv(fd).context("recvmmsg")?;
        for i in 0..received {
            let datagram = recv.get(i);
            if datagram.truncated || datagram.len > udp::MAX_DATAGRAM {
                continue;
            }
            let Some(dests) = datagram.from.and_then(|from| routes.get(&from)) else {
                continue;
            };
            let payload = &datagram.buf[..datagram.len];
            if is_rtcp(payload) || dropped.contains(&ssrc(payload)) {
                continue;
            }
            for &to in dests {
                out.push(|slot| {
                    slot[..payload.len()].copy_from_slice(payload);
                    Some((to, payload.len()))
                });
            }
        }
        out.flush();
    }
}
