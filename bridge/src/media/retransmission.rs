//! A fixed-size cache of recently received plaintext RTP packets of one source, to answer
//! NACKs without asking the sender. Memory is allocated once when the source is signalled.

use super::udp::MAX_DATAGRAM;

pub struct RetransmissionCache {
    data: Vec<u8>,
    /// (sequence number, length); length 0 = empty slot.
    entries: Vec<(u16, u16)>,
}

impl RetransmissionCache {
    pub fn new(packets: usize) -> RetransmissionCache {
        RetransmissionCache {
            data: vec![0; packets * MAX_DATAGRAM],
            entries: vec![(0, 0); packets],
        }
    }

    pub fn insert(&mut self, seq: u16, packet: &[u8]) {
        if packet.len() > MAX_DATAGRAM || self.entries.is_empty() {
            return;
        }
        let i = seq as usize % self.entries.len();
        self.data[i * MAX_DATAGRAM..i * MAX_DATAGRAM + packet.len()].copy_from_slice(packet);
        self.entries[i] = (seq, packet.len() as u16);
    }

    pub fn get(&self, seq: u16) -> Option<&[u8]> {
        if self.entries.is_empty() {
            return None;
        }
        let i = seq as usize % self.entries.len();
        match self.entries[i] {
            (s, len) if s == seq && len > 0 => {
                Some(&self.data[i * MAX_DATAGRAM..i * MAX_DATAGRAM + len as usize])
            }
            _ => None,
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.data.capacity() + self.entries.capacity() * std::mem::size_of::<(u16, u16)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_packets_only() {
        let mut cache = RetransmissionCache::new(4);
        for seq in 0u16..6 {
            cache.insert(seq, &[seq as u8; 10]);
        }
        assert!(cache.get(1).is_none(), "overwritten by 5");
        assert_eq!(cache.get(5).unwrap(), &[5u8; 10]);
        assert_eq!(cache.get(2).unwrap(), &[2u8; 10]);
        assert!(cache.get(9).is_none());
        cache.insert(7, &vec![1; MAX_DATAGRAM + 1]);
        assert!(cache.get(7).is_none());
    }
}
