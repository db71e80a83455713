//! Batched UDP I/O: one `recvmmsg` fills many preallocated buffers, one `sendmmsg` sends many.
//! Written against libc directly because the batching is the point: a syscall per datagram
//! costs more than the SRTP work per packet (docs/architecture.md).

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, Socket, Type};

use super::outbox::Outbox;
pub use super::outbox::{MAX_DATAGRAM, SLOT};

pub fn bind(addr: SocketAddr, poll_interval: Duration) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Large kernel buffers absorb bursts (keyframes fanned out to many receivers).
    socket.set_recv_buffer_size(8 << 20)?;
    socket.set_send_buffer_size(8 << 20)?;
    socket.bind(&addr.into())?;
    // The worker wakes at least this often for timers and control commands.
    socket.set_read_timeout(Some(poll_interval))?;
    Ok(socket.into())
}

fn to_storage(addr: SocketAddr, storage: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let sin =
                unsafe { &mut *(storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe {
                &mut *(storage as *mut libc::sockaddr_storage as *mut libc::sockaddr_in6)
            };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

fn from_storage(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET if len as usize >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the kernel wrote a sockaddr_in (family and length checked).
            let sin =
                unsafe { &*(storage as *const libc::sockaddr_storage as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(ip.into(), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 if len as usize >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the kernel wrote a sockaddr_in6 (family and length checked).
            let sin6 = unsafe {
                &*(storage as *const libc::sockaddr_storage as *const libc::sockaddr_in6)
            };
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                sin6.sin6_addr.s6_addr.into(),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Preallocated receive buffers for one `recvmmsg` call.
pub struct RecvBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    /// Room for each datagram's arrival stamp; empty unless the batch is `stamped`.
    controls: Vec<[u64; CONTROL / 8]>,
}

/// Room for one `SCM_TIMESTAMPNS` control message, aligned.
const CONTROL: usize = 64;

/// Asks the kernel to stamp every datagram `socket` receives with its arrival time, for a
/// `stamped` batch to read.
pub fn enable_arrival_stamps(socket: &UdpSocket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a plain int option on a socket the caller owns.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &on as *const _ as *const libc::c_void,
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One received datagram.
pub struct Received<'a> {
    pub buf: &'a mut [u8],
    pub len: usize,
    pub from: Option<SocketAddr>,
    /// The datagram was larger than the buffer (MSG_TRUNC).
    pub truncated: bool,
}

impl RecvBatch {
    pub fn new(count: usize) -> RecvBatch {
        RecvBatch::build(count, false)
    }

    /// A batch that also takes each datagram's arrival time (see `enable_arrival_stamps`).
    pub fn stamped(count: usize) -> RecvBatch {
        RecvBatch::build(count, true)
    }

    fn build(count: usize, stamped: bool) -> RecvBatch {
        let mut batch = RecvBatch {
            bufs: vec![0; count * SLOT],
            // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr.
            addrs: vec![unsafe { zeroed() }; count],
            iovecs: vec![unsafe { zeroed() }; count],
            msgs: vec![unsafe { zeroed() }; count],
            controls: vec![[0; CONTROL / 8]; if stamped { count } else { 0 }],
        };
        // The vectors never grow, so the pointers stay valid for the batch's life.
        for i in 0..count {
            batch.iovecs[i].iov_base = batch.bufs[i * SLOT..].as_mut_ptr() as *mut libc::c_void;
            batch.iovecs[i].iov_len = SLOT;
            batch.msgs[i].msg_hdr.msg_iov = &mut batch.iovecs[i];
            batch.msgs[i].msg_hdr.msg_iovlen = 1;
            batch.msgs[i].msg_hdr.msg_name = &mut batch.addrs[i] as *mut _ as *mut libc::c_void;
            if let Some(control) = batch.controls.get_mut(i) {
                batch.msgs[i].msg_hdr.msg_control = control.as_mut_ptr() as *mut libc::c_void;
            }
        }
        batch
    }

    /// Blocks until at least one datagram arrives or the socket's read timeout passes.
    /// Returns the number received (0 on timeout).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        let control_len = if self.controls.is_empty() { 0 } else { CONTROL };
        for msg in &mut self.msgs {
            msg.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msg.msg_hdr.msg_controllen = control_len as _;
            msg.msg_hdr.msg_flags = 0;
            msg.msg_len = 0;
        }
        // SAFETY: msgs point at buffers owned by self, sized as declared.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                self.msgs.len() as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock
                | io::ErrorKind::TimedOut
                | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        Ok(n as usize)
    }

    pub fn get(&mut self, i: usize) -> Received<'_> {
        let msg = &self.msgs[i];
        Received {
            len: msg.msg_len as usize,
            from: from_storage(&self.addrs[i], msg.msg_hdr.msg_namelen),
            truncated: msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            buf: &mut self.bufs[i * SLOT..(i + 1) * SLOT],
        }
    }

    /// The kernel's arrival time (wall clock) of datagram `i` of a `stamped` batch.
    pub fn arrival(&self, i: usize) -> Option<SystemTime> {
        if self.controls.is_empty() {
            return None;
        }
        let hdr = &self.msgs[i].msg_hdr;
        // SAFETY: the kernel filled msg_control up to msg_controllen with well-formed control
        // messages; the CMSG macros stay within it.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(hdr);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts =
                        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const libc::timespec);
                    return Some(UNIX_EPOCH + Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
                cmsg = libc::CMSG_NXTHDR(hdr, cmsg);
            }
        }
        None
    }
}

/// Outgoing datagrams collected for one `sendmmsg`; sends a full batch before taking more.
pub struct SendBatch {
    fd: RawFd,
    bufs: Vec<u8>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    iovecs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    count: usize,
    /// Datagrams the kernel refused (counted by the caller as drops).
    pub failed: u64,
}

impl SendBatch {
    pub fn new(socket: &UdpSocket, capacity: usize) -> SendBatch {
        SendBatch {
            fd: socket.as_raw_fd(),
            bufs: vec![0; capacity * SLOT],
            lens: vec![0; capacity],
            // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr.
            addrs: vec![unsafe { zeroed() }; capacity],
            addr_lens: vec![0; capacity],
            iovecs: vec![unsafe { zeroed() }; capacity],
            msgs: vec![unsafe { zeroed() }; capacity],
            count: 0,
            failed: 0,
        }
    }

    pub fn flush(&mut self) {
        let mut sent = 0;
        while sent < self.count {
            for i in sent..self.count {
                self.iovecs[i].iov_base = self.bufs[i * SLOT..].as_mut_ptr() as *mut libc::c_void;
                self.iovecs[i].iov_len = self.lens[i];
                let hdr = &mut self.msgs[i].msg_hdr;
                hdr.msg_iov = &mut self.iovecs[i];
                hdr.msg_iovlen = 1;
                hdr.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
                hdr.msg_namelen = self.addr_lens[i];
            }
            // SAFETY: the headers point at buffers owned by self, sized as declared.
            let n = unsafe {
                libc::sendmmsg(
                    self.fd,
                    self.msgs[sent..].as_mut_ptr(),
                    (self.count - sent) as libc::c_uint,
                    0,
                )
            };
            if n <= 0 {
                let err = io::Error::last_os_error();
                if n < 0 && err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // Skip the datagram the kernel refused (e.g. unreachable address) and go on.
                self.failed += 1;
                sent += 1;
            } else {
                sent += n as usize;
            }
        }
        self.count = 0;
    }
}

impl Outbox for SendBatch {
    fn push(&mut self, write: impl FnOnce(&mut [u8]) -> Option<(SocketAddr, usize)>) {
        if self.count == self.lens.len() {
            self.flush();
        }
        let i = self.count;
        let slot = &mut self.bufs[i * SLOT..(i + 1) * SLOT];
        if let Some((to, len)) = write(slot) {
            self.lens[i] = len.min(SLOT);
            self.addr_lens[i] = to_storage(to, &mut self.addrs[i]);
            self.count += 1;
        }
    }
}
