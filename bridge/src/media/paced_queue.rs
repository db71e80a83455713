//! The packets a receiver's pacer holds back: a key frame's burst waits here and leaves at the
//! pacing rate instead of overrunning the receiver's link. Packets are kept as written for the
//! receiver (rewritten, not yet given their transport-wide sequence number nor encrypted: both
//! happen when they leave, in the order they leave). A ring of fixed slots, allocated the first
//! time a packet is held and kept; when it is full, the packet goes at once, ahead of those
//! held (and is counted): receivers reorder, while a drop would cost a NACK round trip.

use super::outbox::MAX_DATAGRAM;

/// Packets held at most per receiver: a 720p key frame is 50 to 100 packets.
pub const CAPACITY: usize = 128;

/// What a held packet needs to leave: its transport-cc extension's id as the sender wrote it
/// and as the receiver negotiated it.
#[derive(Clone, Copy, Default)]
pub struct Held {
    pub len: u16,
    pub twcc: Option<(u8, u8)>,
}

#[derive(Default)]
pub struct PacedQueue {
    /// CAPACITY slots of MAX_DATAGRAM bytes, once a packet was held.
    data: Vec<u8>,
    entries: Vec<Held>,
    head: usize,
    len: usize,
}

impl PacedQueue {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Holds `packet`; false when the queue is full or the packet too large.
    pub fn push(&mut self, packet: &[u8], twcc: Option<(u8, u8)>) -> bool {
        if self.len == CAPACITY || packet.len() > MAX_DATAGRAM {
            return false;
        }
        if self.data.is_empty() {
            self.data = vec![0; CAPACITY * MAX_DATAGRAM];
            self.entries = vec![Held::default(); CAPACITY];
        }
        let i = (self.head + self.len) % CAPACITY;
        self.data[i * MAX_DATAGRAM..i * MAX_DATAGRAM + packet.len()].copy_from_slice(packet);
        self.entries[i] = Held {
            len: packet.len() as u16,
            twcc,
        };
        self.len += 1;
        true
    }

    /// The packet that leaves next.
    pub fn front(&self) -> Option<(&[u8], Held)> {
        if self.len == 0 {
            return None;
        }
        let held = self.entries[self.head];
        let start = self.head * MAX_DATAGRAM;
        Some((&self.data[start..start + usize::from(held.len)], held))
    }

    pub fn pop(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) % CAPACITY;
            self.len -= 1;
        }
    }

    /// Forgets every held packet (the receiver went away or lost its keys).
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }

    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() + self.entries.capacity() * std::mem::size_of::<Held>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_in_order_up_to_its_capacity_and_allocates_once() {
        let mut q = PacedQueue::default();
        assert_eq!(q.heap_bytes(), 0, "nothing until a packet is held");
        assert!(q.front().is_none());
        for i in 0..CAPACITY {
            assert!(q.push(&[i as u8; 100], Some((5, 3))));
        }
        let bytes = q.heap_bytes();
        assert!(!q.push(&[0; 100], None), "full");
        assert!(!PacedQueue::default().push(&[0; MAX_DATAGRAM + 1], None));
        for i in 0..CAPACITY / 2 {
            let (packet, held) = q.front().unwrap();
            assert_eq!(packet, &[i as u8; 100][..]);
            assert_eq!(held.twcc, Some((5, 3)));
            q.pop();
        }
        // Wraps around the ring.
        for i in 0..CAPACITY / 2 {
            assert!(q.push(&[(i as u8).wrapping_add(200); 10], None));
        }
        assert_eq!(q.len(), CAPACITY);
        assert_eq!(q.front().unwrap().0, &[(CAPACITY / 2) as u8; 100][..]);
        assert_eq!(q.heap_bytes(), bytes, "no allocation after the first");
        q.clear();
        assert!(q.is_empty() && q.front().is_none());
    }
}
