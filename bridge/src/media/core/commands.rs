//! Control commands: conferences and endpoints made, changed and expired.

use std::time::Instant;

use super::Core;
use crate::media::endpoint::Endpoint;
use crate::media::outbox::Outbox;
use crate::media::router::Router;
use crate::media::{Command, EndpointState, WorkerEvent};

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
            } => {
                let Some(&conference) = self.router_ids.get(&conference_id) else {
                    return;
                };
                let Some(router) = self.routers[conference].as_mut() else {
                    return;
                };
                if router.by_endpoint_id.contains_key(&endpoint_id) {
                    return;
                }
                let tag = self.next_tag;
                self.next_tag = self.next_tag.wrapping_add(1).max(1);
                let ufrag = ice.ufrag.clone();
                let endpoint = Endpoint::new(
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
                self.by_ufrag.insert(ufrag, slot);
                self.by_tag.insert(tag, slot);
                self.events.push_back(WorkerEvent {
                    conference_id,
                    endpoint_id,
                    state: EndpointState::Allocated,
                    detail: String::new(),
                });
            }
            Command::UpdateEndpoint {
                conference_id,
                endpoint_id,
                transport,
                media,
                sources,
            } => {
                let Some((conference, slot)) = self.endpoint_slot(&conference_id, &endpoint_id)
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
                if let Some(router) = self.routers[conference].as_mut() {
                    if media_changed {
                        router.update_consumers(slot, &mut self.endpoints, &mut self.rng);
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
                self.drive(slot, now, out);
            }
            Command::ExpireEndpoint {
                conference_id,
                endpoint_id,
            } => {
                if let Some((conference, slot)) = self.endpoint_slot(&conference_id, &endpoint_id) {
                    if let Some(router) = self.routers[conference].as_mut() {
                        router.remove_member(slot, &mut self.endpoints);
                    }
                    self.free_endpoint(slot);
                    self.allocate_all(conference, now);
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
                if let Some((conference, slot)) = self.endpoint_slot(&conference_id, &endpoint_id) {
                    if let Some(endpoint) = self.endpoints[slot].as_mut() {
                        endpoint.constraints.apply(update);
                    }
                    self.allocate(conference, slot, now);
                }
            }
        }
    }

    /// The router and endpoint slots of an endpoint.
    fn endpoint_slot(&self, conference_id: &str, endpoint_id: &str) -> Option<(usize, usize)> {
        let conference = *self.router_ids.get(conference_id)?;
        let router = self.routers[conference].as_ref()?;
        Some((conference, *router.by_endpoint_id.get(endpoint_id)?))
    }
}
