//! `recvmmsg` with the kernel's arrival time of every datagram (`SO_TIMESTAMPNS`), for the
//! verified receivers: their latency ends when a packet reaches the receiving socket, not when
//! the generator, busy draining hundreds of other sockets on its one core, gets to read it.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::RawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tutti_bridge::media::udp::SLOT;

/// Room for one `SCM_TIMESTAMPNS` control message (and alignment).
const CONTROL: usize = 64;

/// Asks the kernel to stamp every datagram `fd` receives.
pub fn enable(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a plain int option on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            fd,
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

pub struct StampedBatch {
    bufs: Vec<u8>,
    controls: Vec<[u64; CONTROL / 8]>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
}

impl StampedBatch {
    pub fn new(count: usize) -> StampedBatch {
        let mut batch = StampedBatch {
            bufs: vec![0; count * SLOT],
            controls: vec![[0; CONTROL / 8]; count],
            // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr.
            addrs: vec![unsafe { zeroed() }; count],
            iovecs: vec![unsafe { zeroed() }; count],
            msgs: vec![unsafe { zeroed() }; count],
        };
        // The vectors never grow, so the pointers stay valid for the batch's life.
        for i in 0..count {
            batch.iovecs[i].iov_base = batch.bufs[i * SLOT..].as_mut_ptr() as *mut libc::c_void;
            batch.iovecs[i].iov_len = SLOT;
            let hdr = &mut batch.msgs[i].msg_hdr;
            hdr.msg_iov = &mut batch.iovecs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_name = &mut batch.addrs[i] as *mut _ as *mut libc::c_void;
            hdr.msg_control = batch.controls[i].as_mut_ptr() as *mut libc::c_void;
        }
        batch
    }

    /// Takes what is queued on `fd` without waiting (the caller polls); 0 if nothing.
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for msg in &mut self.msgs {
            msg.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            msg.msg_hdr.msg_controllen = CONTROL as _;
            msg.msg_hdr.msg_flags = 0;
            msg.msg_len = 0;
        }
        // SAFETY: msgs point at buffers owned by self, sized as declared.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                self.msgs.len() as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(err),
            };
        }
        Ok(n as usize)
    }

    pub fn datagram(&self, i: usize) -> &[u8] {
        let len = (self.msgs[i].msg_len as usize).min(SLOT);
        &self.bufs[i * SLOT..i * SLOT + len]
    }

    pub fn from(&self, i: usize) -> Option<std::net::SocketAddr> {
        tutti_bridge::media::udp::from_storage(&self.addrs[i], self.msgs[i].msg_hdr.msg_namelen)
    }

    /// The kernel's arrival time of datagram `i` (wall clock), if it gave one.
    pub fn arrival(&self, i: usize) -> Option<SystemTime> {
        let hdr = &self.msgs[i].msg_hdr;
        // SAFETY: the kernel filled msg_control up to msg_controllen with well-formed cmsgs;
        // the CMSG macros stay within it.
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
