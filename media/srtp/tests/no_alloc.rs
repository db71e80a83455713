//! The packet path must not touch the Rust heap once an SSRC is known. (aws-lc's own C
//! allocations are not visible to this allocator; its AES-CTR, HMAC context copy and GCM
//! seal/open work on caller and context memory only.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use tutti_srtp::{Context, Profile};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn rtp(buf: &mut [u8], seq: u16, ssrc: u32) -> usize {
    buf[..12].copy_from_slice(&[0x90, 96, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0]);
    buf[2..4].copy_from_slice(&seq.to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
    buf[12..20].copy_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0x7f, 0, 0]);
    buf[20..1200].fill(0x5a);
    1200
}

fn rtcp(buf: &mut [u8], ssrc: u32) -> usize {
    buf[..8].copy_from_slice(&[0x81, 201, 0, 7, 0, 0, 0, 0]);
    buf[4..8].copy_from_slice(&ssrc.to_be_bytes());
    buf[8..32].fill(0x33);
    32
}

#[test]
fn steady_state_packet_path_does_not_allocate() {
    for profile in [Profile::AeadAes128Gcm, Profile::Aes128CmHmacSha1_80] {
        let salt = vec![2; profile.salt_len()];
        let mut tx = Context::new(profile, &[1; 16], &salt).unwrap();
        let mut rx = Context::new(profile, &[1; 16], &salt).unwrap();
        let mut buf = [0u8; 1500];
        let ssrcs = [11u32, 22, 33];
        // Warm-up: the first packet of each SSRC may allocate its state.
        for (seq, &ssrc) in ssrcs.iter().enumerate() {
            let len = rtp(&mut buf, 0xfb00 + seq as u16, ssrc);
            let n = tx.protect_rtp(&mut buf, len).unwrap();
            rx.unprotect_rtp(&mut buf, n).unwrap();
            let len = rtcp(&mut buf, ssrc);
            let n = tx.protect_rtcp(&mut buf, len).unwrap();
            rx.unprotect_rtcp(&mut buf, n).unwrap();
        }

        let before = allocations();
        for seq in 0..3000u32 {
            let ssrc = ssrcs[seq as usize % ssrcs.len()];
            // Crosses the sequence wrap, so ROC handling is on the measured path too.
            let len = rtp(&mut buf, (seq as u16).wrapping_add(0xfc00), ssrc);
            let n = tx.protect_rtp(&mut buf, len).unwrap();
            assert_eq!(rx.unprotect_rtp(&mut buf, n), Ok(len));
            let len = rtcp(&mut buf, ssrc);
            let n = tx.protect_rtcp(&mut buf, len).unwrap();
            assert_eq!(rx.unprotect_rtcp(&mut buf, n), Ok(len));
        }
        assert_eq!(allocations() - before, 0, "{profile:?}");
    }
}
