//! A conference: the endpoints whose media is forwarded to each other. Conferences share
//! nothing: a packet is only ever forwarded to members of its sender's conference.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

pub struct Conference {
    /// Endpoint slots, in join order.
    pub members: Vec<usize>,
    pub by_endpoint_id: HashMap<String, usize>,
    /// Which member sends each signalled SSRC (routes PLI/FIR/NACK to the sender).
    pub ssrc_owner: FxHashMap<u32, usize>,
}

impl Conference {
    pub fn new() -> Conference {
        Conference {
            members: Vec::new(),
            by_endpoint_id: HashMap::new(),
            ssrc_owner: FxHashMap::default(),
        }
    }

    pub fn remove_member(&mut self, slot: usize) {
        self.members.retain(|m| *m != slot);
        self.by_endpoint_id.retain(|_, s| *s != slot);
        self.ssrc_owner.retain(|_, s| *s != slot);
    }
}
