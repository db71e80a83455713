//! Control commands: conferences and endpoints made, changed and expired.

use std::net::SocketAddr;
use std::time::Instant;

use super::Core;
use crate::media::endpoint::{Endpoint, EndpointKind};
use crate::media::outbox::Outbox;
use crate::media::router::Router;
use crate::media::{
    Command, EndpointState, MediaConfig, MediaDesc, MediaKind, RelayTransport, RemoteEndpoint,
    WorkerEvent,
};

impl Core {
    pub fn handle_command(&mut self, now: Instant, command: Command, out: &mut impl Outbox) {
        match command {
            Command::CreateConference { conference_id } => {
                if !self.router_ids.contains_key(&conference_id) {
                    let router = Router::new(self.settings.limits.conference_packet_rate);
                    let slot = match self.free_routers.pop() {
                        Some(slot) => {
                            self.routers[slot] = Some(router);
                            slot
                        }
                        None => {
                            self.routers.push(Some(router));
                            self.routers.len() - 1
                        }
                    };
                    self.router_ids.insert(conference_id, slot);
                }
            }
            Command::ExpireConference { conference_id } => {
                let Some(slot) = self.router_ids.remove(&conference_id) else {
                    return;
                };
                if let Some(router) = self.routers[slot].take() {
                    for member in router.members {
                        self.free_endpoint(member);
                    }
                }
                self.free_routers.push(slot);
            }
            Command::AllocateEndpoint {
                conference_id,
                endpoint_id,
                participant_id,
                ice,
                allocation,
                receives_by_mid,
            } => {
                self.allocations = self.allocations.max(allocation);
                let slot = self.add_endpoint(
                    EndpointKind::Participant,
                    conference_id,
                    endpoint_id,
                    participant_id,
                    ice,
                    true,
                    now,
                );
                if let Some(endpoint) = slot.and_then(|slot| self.endpoints[slot].as_mut()) {
                    endpoint.receives_by_mid = receives_by_mid;
                }
            }
            Command::AllocateRelay {
                conference_id,
                relay_id,
                link_id,
                ice,
                controlling,
            } => {
                if self.by_link.contains_key(&link_id) {
                    return;
                }
                let kind = EndpointKind::Relay {
                    link_id,
                    peers: Vec::new(),
                };
                let participant_id = relay_id.clone();
                if let Some(slot) = self.add_endpoint(
                    kind,
                    conference_id,
                    relay_id,
                    participant_id,
                    ice,
                    controlling,
                    now,
                ) {
                    self.by_link.insert(link_id, slot);
                }
            }
            Command::UpdateRelay {
                conference_id,
                relay_id,
                transport,
                media,
                remote_endpoints,
            } => {
                let Some((conference, slot)) = self.relay_slot(&conference_id, &relay_id) else {
                    return;
                };
                if let Some(transport) = transport {
                    self.set_relay_transport(slot, transport, now);
                }
                if let Some(media) = media {
                    let remote = remote_media(&media);
                    for remote_slot in self.remotes_of(conference, slot) {
                        if let Some(e) = self.endpoints[remote_slot].as_mut() {
                            e.media = remote.clone();
                        }
                    }
                    if let Some(relay) = self.endpoints[slot].as_mut() {
                        relay.media = media;
                    }
                    if let Some(router) = self.routers[conference].as_mut() {
                        router.update_consumers(slot, &mut self.endpoints, &mut self.rng);
                    }
                }
                if let Some(remotes) = remote_endpoints {
                    self.set_remote_endpoints(conference, slot, remotes, now);
                }
                self.allocate_all(conference, now);
                self.drive(slot, now, out);
            }
            Command::ExpireRelay {
                conference_id,
                relay_id,
            } => {
                let Some((conference, slot)) = self.relay_slot(&conference_id, &relay_id) else {
                    return;
                };
                self.set_remote_endpoints(conference, slot, Vec::new(), now);
                self.remove_endpoint(conference, slot, now);
            }
            Command::UpdateEndpoint {
                conference_id,
                endpoint_id,
                transport,
                media,
                sources,
                receive_mids,
            } => {
                let Some((conference, slot)) = self.participant_slot(&conference_id, &endpoint_id)
                else {
                    return;
                };
                let Some(endpoint) = self.endpoints[slot].as_mut() else {
                    return;
                };
                if let Some(transport) = transport {
                    endpoint.transport.set_remote_transport(&transport, now);
                }
                let media_changed = media.is_some();
                if let Some(media) = media {
                    endpoint.media = media;
                }
                let mids_changed = receive_mids.is_some();
                if let Some(mids) = receive_mids {
                    endpoint.receive_mids = mids;
                }
                let mut started = Vec::new();
                if let Some(router) = self.routers[conference].as_mut() {
                    if media_changed || mids_changed {
                        started = router.update_consumers(slot, &mut self.endpoints, &mut self.rng);
                    }
                    if let Some(sources) = sources {
                        router.set_producers(
                            slot,
                            &sources.producers(),
                            &mut self.endpoints,
                            &mut self.rng,
                        );
                    }
                }
                self.allocate_all(conference, now);
                self.start_at_keyframes(conference, slot, &started, now, out);
                self.drive(slot, now, out);
            }
            Command::ExpireEndpoint {
                conference_id,
                endpoint_id,
            } => {
                if let Some((conference, slot)) =
                    self.participant_slot(&conference_id, &endpoint_id)
                {
                    self.remove_endpoint(conference, slot, now);
                }
            }
            Command::DescribeReceivers { reply } => {
                let _ = reply.send(self.describe_receivers(now));
            }
            Command::SetConstraints {
                conference_id,
                endpoint_id,
                update,
            } => {
                if let Some((conference, slot)) =
                    self.participant_slot(&conference_id, &endpoint_id)
                {
                    if let Some(endpoint) = self.endpoints[slot].as_mut() {
                        endpoint.constraints.apply(update);
                    }
                    self.allocate(conference, slot, now);
                }
            }
        }
    }

    /// `receiver` was just given consumers of the producers `started` (it accepted their
    /// streams, or changed its media): each video one starts at a key frame, so while the
    /// receiver can be sent to, the sender is asked for one of the encoding the allocator chose
    /// for it now rather than at the next packet that is none (a receiver not connected yet
    /// asks itself once it decodes nothing).
    fn start_at_keyframes(
        &mut self,
        conference: usize,
        receiver: usize,
        started: &[usize],
        now: Instant,
        out: &mut impl Outbox,
    ) {
        let connected = self.endpoints[receiver]
            .as_ref()
            .is_some_and(|e| e.transport.media_destination().is_some());
        if !connected {
            return;
        }
        for &p in started {
            let Some(encoding) = self.routers[conference]
                .as_mut()
                .and_then(|router| router.producer_mut(p))
                .filter(|producer| producer.kind == MediaKind::Video)
                .and_then(|producer| producer.consumer_of(receiver)?.target)
                .map(|target| target.spatial)
            else {
                continue;
            };
            self.request_keyframe(conference, p, encoding, now, out);
        }
    }

    /// The router and endpoint slots of a member of a conference.
    fn endpoint_slot(&self, conference_id: &str, endpoint_id: &str) -> Option<(usize, usize)> {
        let conference = *self.router_ids.get(conference_id)?;
        let router = self.routers[conference].as_ref()?;
        Some((conference, *router.by_endpoint_id.get(endpoint_id)?))
    }

    /// The router and endpoint slots of a relay to another bridge.
    fn relay_slot(&self, conference_id: &str, relay_id: &str) -> Option<(usize, usize)> {
        self.endpoint_slot(conference_id, relay_id)
            .filter(|&(_, slot)| self.endpoints[slot].as_ref().is_some_and(|e| e.is_relay()))
    }

    /// The router and endpoint slots of a client of this bridge.
    fn participant_slot(&self, conference_id: &str, endpoint_id: &str) -> Option<(usize, usize)> {
        self.endpoint_slot(conference_id, endpoint_id)
            .filter(|&(_, slot)| {
                self.endpoints[slot]
                    .as_ref()
                    .is_some_and(|e| e.is_participant())
            })
    }

    /// Makes a member of a conference (nothing when the conference is unknown or the id taken);
    /// returns its slot.
    #[allow(clippy::too_many_arguments)]
    fn add_endpoint(
        &mut self,
        kind: EndpointKind,
        conference_id: String,
        endpoint_id: String,
        participant_id: String,
        ice: tutti_ice::Credentials,
        controlling: bool,
        now: Instant,
    ) -> Option<usize> {
        let conference = *self.router_ids.get(&conference_id)?;
        let router = self.routers[conference].as_mut()?;
        if router.by_endpoint_id.contains_key(&endpoint_id) {
            return None;
        }
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        let ufrag = ice.ufrag.clone();
        let remote = matches!(kind, EndpointKind::Remote { .. });
        let relay = matches!(kind, EndpointKind::Relay { .. });
        let endpoint = Endpoint::new(
            kind,
            conference_id.clone(),
            endpoint_id.clone(),
            participant_id,
            conference,
            tag,
            (
                rand::Rng::random(&mut self.rng),
                rand::Rng::random(&mut self.rng),
            ),
            ice,
            controlling,
            &self.settings,
            now,
        );
        let slot = match self.free_endpoints.pop() {
            Some(slot) => {
                self.endpoints[slot] = Some(endpoint);
                slot
            }
            None => {
                self.endpoints.push(Some(endpoint));
                self.endpoints.len() - 1
            }
        };
        router.add_member(endpoint_id.clone(), slot);
        self.by_tag.insert(tag, slot);
        if !remote {
            self.by_ufrag.insert(ufrag, slot);
            self.events.push_back(WorkerEvent {
                conference_id,
                endpoint_id,
                state: EndpointState::Allocated,
                detail: String::new(),
                relay,
            });
        }
        Some(slot)
    }

    /// Takes a member out of its conference and frees it; the others' allocations follow.
    fn remove_endpoint(&mut self, conference: usize, slot: usize, now: Instant) {
        if let Some(router) = self.routers[conference].as_mut() {
            router.remove_member(slot, &mut self.endpoints);
        }
        self.free_endpoint(slot);
        self.allocate_all(conference, now);
    }

    /// The far side of a relay: ICE credentials, candidates and fingerprint, and the far
    /// bridge's id for it. The candidates' addresses are the far bridge's: its datagrams from
    /// there end with a link id.
    fn set_relay_transport(&mut self, slot: usize, transport: RelayTransport, now: Instant) {
        let Some(relay) = self.endpoints[slot].as_mut() else {
            return;
        };
        relay.transport.set_remote_transport(&transport.remote, now);
        relay.transport.set_link_id(transport.link_id);
        let EndpointKind::Relay { peers, .. } = &mut relay.kind else {
            return;
        };
        let new: Vec<SocketAddr> = transport
            .remote
            .candidates
            .iter()
            .map(|&(addr, _)| addr)
            .filter(|addr| !peers.contains(addr))
            .collect();
        peers.extend_from_slice(&new);
        self.add_relay_peers(&new);
    }

    /// The members behind the relay in `relay`.
    fn remotes_of(&self, conference: usize, relay: usize) -> Vec<usize> {
        self.routers[conference]
            .as_ref()
            .map_or(Vec::new(), |router| {
                router
                    .members
                    .iter()
                    .copied()
                    .filter(|&m| {
                        self.endpoints[m]
                            .as_ref()
                            .is_some_and(|e| e.relay() == Some(relay))
                    })
                    .collect()
            })
    }

    /// Makes the participants behind a relay exactly `remotes`: new ones become members (with
    /// no transport of their own), those that stay get their sources as given, the others
    /// leave. An id that names a member of another kind is skipped.
    fn set_remote_endpoints(
        &mut self,
        conference: usize,
        relay: usize,
        remotes: Vec<RemoteEndpoint>,
        now: Instant,
    ) {
        for slot in self.remotes_of(conference, relay) {
            let stays = self.endpoints[slot]
                .as_ref()
                .is_some_and(|e| remotes.iter().any(|r| r.endpoint_id == e.endpoint_id));
            if !stays {
                self.remove_endpoint(conference, slot, now);
            }
        }
        let Some((conference_id, media)) = self.endpoints[relay]
            .as_ref()
            .map(|e| (e.conference_id.clone(), remote_media(&e.media)))
        else {
            return;
        };
        for remote in remotes {
            let existing = self
                .endpoint_slot(&conference_id, &remote.endpoint_id)
                .map(|(_, slot)| slot);
            let slot = match existing {
                Some(slot)
                    if self.endpoints[slot]
                        .as_ref()
                        .is_some_and(|e| e.relay() == Some(relay)) =>
                {
                    slot
                }
                Some(_) => continue,
                None => {
                    let Some(slot) = self.add_endpoint(
                        EndpointKind::Remote { relay },
                        conference_id.clone(),
                        remote.endpoint_id,
                        remote.participant_id,
                        // Never used: it has no transport of its own.
                        tutti_ice::Credentials {
                            ufrag: String::new(),
                            pwd: String::new(),
                        },
                        false,
                        now,
                    ) else {
                        continue;
                    };
                    if let Some(e) = self.endpoints[slot].as_mut() {
                        e.media = media.clone();
                    }
                    slot
                }
            };
            if let Some(router) = self.routers[conference].as_mut() {
                router.set_producers(
                    slot,
                    &remote.sources.producers(),
                    &mut self.endpoints,
                    &mut self.rng,
                );
            }
        }
    }
}

/// What a participant behind a relay sends, as the relay carries it (payload types, RTX,
/// codecs, header extensions); it receives nothing here.
fn remote_media(relay: &MediaConfig) -> MediaConfig {
    let remote = |desc: &Option<MediaDesc>| {
        desc.clone().map(|d| MediaDesc {
            receives: false,
            ..d
        })
    };
    MediaConfig {
        audio: remote(&relay.audio),
        video: remote(&relay.video),
    }
}
