//! Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01):
//! generation on the receiving side and decoding of received feedback.

use super::{split_packet, write_header, FMT_TWCC, PT_RTPFB};
use crate::{be_u16, be_u32, Error};

/// Marks a ring slot whose packet has not arrived.
const NOT_RECEIVED: i64 = i64::MIN;
/// Receive deltas are multiples of 250 µs.
const DELTA_TICK_US: i64 = 250;
/// The reference time is in multiples of 64 ms, i.e. 256 delta ticks.
const REFERENCE_TICKS: i64 = 256;
/// Fixed part of a feedback packet: RTCP header, two SSRCs, base/count, reference/fb count.
const FIXED_LEN: usize = 20;
const MAX_RUN_LENGTH: u16 = 0x1fff;
const ONE_BIT_CAPACITY: usize = 14;
const TWO_BIT_CAPACITY: usize = 7;
/// Status symbols.
const SYM_NOT_RECEIVED: u8 = 0;
const SYM_SMALL_DELTA: u8 = 1;
const SYM_LARGE_DELTA: u8 = 2;

/// transport-cc (draft-holmer-rmcat-transport-wide-cc-extensions-01) feedback generation on
/// the receiving side: fixed capacity (chosen at construction, e.g. 1024), no allocation after new().
///
/// Arrival times live in a ring indexed by the unwrapped transport-wide sequence number. The
/// window still to report runs from `window_start` to `highest`; a packet that arrives after
/// it was reported lost moves `window_start` back so the next feedback corrects the report
/// (as libwebrtc does), provided it is still in the ring.
#[derive(Clone, Debug)]
pub struct TwccRecorder {
    arrivals: Vec<i64>,
    highest: Option<i64>,
    window_start: i64,
    fb_count: u8,
}

impl TwccRecorder {
    /// Capacity is clamped to 16..=32768 packets: beyond half the sequence space the unwrapping
    /// of 16-bit sequence numbers would become ambiguous.
    pub fn new(capacity: usize) -> TwccRecorder {
        TwccRecorder {
            arrivals: vec![NOT_RECEIVED; capacity.clamp(16, 32768)],
            highest: None,
            window_start: 0,
            fb_count: 0,
        }
    }

    fn slot(&self, ext: i64) -> usize {
        ext.rem_euclid(self.arrivals.len() as i64) as usize
    }

    fn capacity(&self) -> i64 {
        self.arrivals.len() as i64
    }

    /// A packet with transport-wide sequence `seq` arrived at `arrival_us` (monotonic µs).
    /// Handles wrap-around, reordering and duplicates.
    pub fn record(&mut self, seq: u16, arrival_us: i64) {
        let arrival_us = arrival_us.max(NOT_RECEIVED + 1);
        let cap = self.capacity();
        let Some(highest) = self.highest else {
            let ext = i64::from(seq);
            let slot = self.slot(ext);
            self.arrivals[slot] = arrival_us;
            self.highest = Some(ext);
            self.window_start = ext;
            return;
        };
        let ext = highest + i64::from(seq.wrapping_sub(highest as u16) as i16);
        if ext > highest {
            for gap in (highest + 1).max(ext - cap + 1)..ext {
                let slot = self.slot(gap);
                self.arrivals[slot] = NOT_RECEIVED;
            }
            let slot = self.slot(ext);
            self.arrivals[slot] = arrival_us;
            self.highest = Some(ext);
            self.window_start = self.window_start.max(ext - cap + 1);
        } else if ext > highest - cap {
            let slot = self.slot(ext);
            if self.arrivals[slot] == NOT_RECEIVED {
                self.arrivals[slot] = arrival_us;
                self.window_start = self.window_start.min(ext);
            }
        }
    }

    /// Writes one RTPFB FMT=15 feedback packet covering everything recorded since the last
    /// feedback (packets never seen in that range are reported "not received"); None when
    /// nothing new.
    ///
    /// The feedback ends early (the rest goes in the next one) when a receive delta does not
    /// fit the 16-bit field or when `out` could not hold more; None also when `out` cannot hold
    /// even one packet's report.
    pub fn write_feedback(
        &mut self,
        out: &mut [u8],
        sender_ssrc: u32,
        media_ssrc: u32,
    ) -> Option<usize> {
        let highest = self.highest?;
        let base = self.window_start;
        if base > highest {
            return None;
        }
        let end = self.feedback_end(base, highest, out.len())?;
        let first_arrival = (base..=end)
            .map(|e| self.arrivals[self.slot(e)])
            .find(|&a| a != NOT_RECEIVED)?;
        let reference = first_arrival.div_euclid(DELTA_TICK_US * REFERENCE_TICKS);
        let status_count = u16::try_from(end - base + 1).ok()?;

        let mut encoder = ChunkEncoder::new(FIXED_LEN);
        for (symbol, _) in self.window(base, end, reference) {
            if !encoder.can_add(symbol) {
                encoder.emit(out)?;
            }
            encoder.add(symbol);
        }
        encoder.encode_last(out)?;
        let mut pos = encoder.pos;
        for (_, delta) in self.window(base, end, reference) {
            match delta {
                Some(d @ 0..=255) => {
                    *out.get_mut(pos)? = d as u8;
                    pos += 1;
                }
                Some(d) => {
                    out.get_mut(pos..pos + 2)?
                        .copy_from_slice(&(d as i16).to_be_bytes());
                    pos += 2;
                }
                None => {}
            }
        }
        let padding = (4 - pos % 4) % 4;
        let len = pos + padding;
        let tail = out.get_mut(pos..len)?;
        tail.fill(0);
        if let Some(last) = tail.last_mut() {
            *last = padding as u8;
        }
        write_header(out, FMT_TWCC, PT_RTPFB, len).ok()?;
        if padding != 0 {
            out[0] |= 0x20;
        }
        let fixed = out.get_mut(4..FIXED_LEN)?;
        fixed[0..4].copy_from_slice(&sender_ssrc.to_be_bytes());
        fixed[4..8].copy_from_slice(&media_ssrc.to_be_bytes());
        fixed[8..10].copy_from_slice(&(base as u16).to_be_bytes());
        fixed[10..12].copy_from_slice(&status_count.to_be_bytes());
        let reference_and_count = ((reference as u32) << 8) | u32::from(self.fb_count);
        fixed[12..16].copy_from_slice(&reference_and_count.to_be_bytes());

        self.fb_count = self.fb_count.wrapping_add(1);
        self.window_start = end + 1;
        Some(len)
    }

    /// Last sequence (a received one) the next feedback can cover: deltas must fit 16 bits
    /// and a conservative size bound (every chunk but the last carries at least 7 statuses)
    /// must fit `out_len`.
    fn feedback_end(&self, base: i64, highest: i64, out_len: usize) -> Option<i64> {
        let mut end = None;
        let mut delta_bytes = 0usize;
        let mut prev_ticks = None;
        for ext in base..=highest {
            let arrival = self.arrivals[self.slot(ext)];
            if arrival == NOT_RECEIVED {
                continue;
            }
            let ticks = arrival.div_euclid(DELTA_TICK_US);
            let prev = prev_ticks
                .unwrap_or(arrival.div_euclid(DELTA_TICK_US * REFERENCE_TICKS) * REFERENCE_TICKS);
            let size = match ticks - prev {
                0..=255 => 1,
                d if i16::try_from(d).is_ok() => 2,
                _ => break,
            };
            let statuses = (ext - base + 1) as usize;
            let bound = FIXED_LEN + 2 * (statuses / TWO_BIT_CAPACITY + 1) + delta_bytes + size + 3;
            if bound > out_len {
                break;
            }
            delta_bytes += size;
            prev_ticks = Some(ticks);
            end = Some(ext);
        }
        end
    }

    fn window(&self, base: i64, end: i64, reference: i64) -> Window<'_> {
        Window {
            recorder: self,
            next: base,
            end,
            prev_ticks: reference * REFERENCE_TICKS,
        }
    }

    /// Heap memory held by the recorder (fixed after construction).
    pub fn heap_bytes(&self) -> usize {
        self.arrivals.capacity() * std::mem::size_of::<i64>()
    }
}

/// Yields `(status symbol, receive delta in ticks)` for each sequence of a feedback window.
struct Window<'a> {
    recorder: &'a TwccRecorder,
    next: i64,
    end: i64,
    prev_ticks: i64,
}

impl Iterator for Window<'_> {
    type Item = (u8, Option<i64>);

    fn next(&mut self) -> Option<(u8, Option<i64>)> {
        if self.next > self.end {
            return None;
        }
        let arrival = self.recorder.arrivals[self.recorder.slot(self.next)];
        self.next += 1;
        if arrival == NOT_RECEIVED {
            return Some((SYM_NOT_RECEIVED, None));
        }
        let ticks = arrival.div_euclid(DELTA_TICK_US);
        let delta = ticks - self.prev_ticks;
        self.prev_ticks = ticks;
        let symbol = if (0..=255).contains(&delta) {
            SYM_SMALL_DELTA
        } else {
            SYM_LARGE_DELTA
        };
        Some((symbol, Some(delta)))
    }
}

/// Packs status symbols into run-length and status vector chunks (the libwebrtc strategy:
/// hold up to 14 symbols, emit a run when they are all equal, a vector otherwise).
struct ChunkEncoder {
    symbols: [u8; ONE_BIT_CAPACITY],
    len: usize,
    all_same: bool,
    has_large: bool,
    pos: usize,
}

impl ChunkEncoder {
    fn new(pos: usize) -> Self {
        ChunkEncoder {
            symbols: [0; ONE_BIT_CAPACITY],
            len: 0,
            all_same: true,
            has_large: false,
            pos,
        }
    }

    fn can_add(&self, symbol: u8) -> bool {
        if self.len < TWO_BIT_CAPACITY {
            return true;
        }
        if self.len < ONE_BIT_CAPACITY && !self.has_large && symbol != SYM_LARGE_DELTA {
            return true;
        }
        self.len < usize::from(MAX_RUN_LENGTH) && self.all_same && self.symbols[0] == symbol
    }

    fn add(&mut self, symbol: u8) {
        if self.len < ONE_BIT_CAPACITY {
            self.symbols[self.len] = symbol;
        }
        self.all_same = self.all_same && (self.len == 0 || self.symbols[0] == symbol);
        self.has_large |= symbol == SYM_LARGE_DELTA;
        self.len += 1;
    }

    fn put(&mut self, out: &mut [u8], chunk: u16) -> Option<()> {
        out.get_mut(self.pos..self.pos + 2)?
            .copy_from_slice(&chunk.to_be_bytes());
        self.pos += 2;
        Some(())
    }

    fn run_length(&mut self, out: &mut [u8]) -> Option<()> {
        let chunk = u16::from(self.symbols[0]) << 13 | self.len as u16;
        self.len = 0;
        self.all_same = true;
        self.has_large = false;
        self.put(out, chunk)
    }

    fn one_bit(&mut self, out: &mut [u8], count: usize) -> Option<()> {
        let mut chunk = 0x8000u16;
        for (i, &s) in self.symbols[..count].iter().enumerate() {
            chunk |= u16::from(s) << (13 - i);
        }
        self.put(out, chunk)
    }

    fn two_bit(&mut self, out: &mut [u8], count: usize) -> Option<()> {
        let mut chunk = 0xc000u16;
        for (i, &s) in self.symbols[..count].iter().enumerate() {
            chunk |= u16::from(s) << (12 - 2 * i);
        }
        self.put(out, chunk)
    }

    /// Writes a chunk when the held symbols cannot take another one.
    fn emit(&mut self, out: &mut [u8]) -> Option<()> {
        if self.all_same {
            return self.run_length(out);
        }
        if self.len == ONE_BIT_CAPACITY {
            self.one_bit(out, ONE_BIT_CAPACITY)?;
            self.len = 0;
            self.all_same = true;
            self.has_large = false;
            return Some(());
        }
        self.two_bit(out, TWO_BIT_CAPACITY)?;
        self.symbols.copy_within(TWO_BIT_CAPACITY..self.len, 0);
        self.len -= TWO_BIT_CAPACITY;
        let held = &self.symbols[..self.len];
        self.all_same = held.iter().all(|&s| s == held[0]);
        self.has_large = held.contains(&SYM_LARGE_DELTA);
        Some(())
    }

    /// Writes whatever symbols are still held (unused vector slots say "not received"; the
    /// status count tells decoders to ignore them).
    fn encode_last(&mut self, out: &mut [u8]) -> Option<()> {
        if self.len == 0 {
            return Some(());
        }
        if self.all_same {
            return self.run_length(out);
        }
        let count = self.len;
        self.symbols[count..].fill(SYM_NOT_RECEIVED);
        if count <= TWO_BIT_CAPACITY {
            self.two_bit(out, TWO_BIT_CAPACITY)
        } else {
            self.one_bit(out, ONE_BIT_CAPACITY)
        }
    }
}

/// A validated transport-cc feedback packet.
struct Feedback<'a> {
    body: &'a [u8],
    base: u16,
    count: u16,
    reference_us: i64,
    deltas_at: usize,
}

impl<'a> Feedback<'a> {
    fn parse(raw: &'a [u8]) -> Result<Self, Error> {
        let (packet, _) = split_packet(raw)?;
        if packet[0] & 0x1f != FMT_TWCC || packet[1] != PT_RTPFB {
            return Err(Error::Unsupported);
        }
        let mut body_end = packet.len();
        if packet[0] & 0x20 != 0 {
            let padding = usize::from(packet[packet.len() - 1]);
            if padding == 0 || padding > packet.len() - 4 {
                return Err(Error::BadLength);
            }
            body_end -= padding;
        }
        let body = &packet[4..body_end];
        let base = be_u16(body, 8).ok_or(Error::TooShort)?;
        let count = be_u16(body, 10).ok_or(Error::TooShort)?;
        let reference_and_count = be_u32(body, 12).ok_or(Error::TooShort)?;
        // Signed 24-bit reference time.
        let reference = i64::from((reference_and_count as i32) >> 8);
        let mut feedback = Feedback {
            body,
            base,
            count,
            reference_us: reference * REFERENCE_TICKS * DELTA_TICK_US,
            deltas_at: 0,
        };
        let mut delta_bytes = 0usize;
        let mut reserved = false;
        feedback.deltas_at = feedback.walk(|_, symbol| match symbol {
            SYM_NOT_RECEIVED => {}
            SYM_SMALL_DELTA => delta_bytes += 1,
            SYM_LARGE_DELTA => delta_bytes += 2,
            _ => reserved = true,
        })?;
        if reserved {
            return Err(Error::Unsupported);
        }
        if body.len() < feedback.deltas_at + delta_bytes {
            return Err(Error::TooShort);
        }
        Ok(feedback)
    }

    /// Calls `f(seq, symbol)` for each covered packet; returns where the deltas begin.
    fn walk(&self, mut f: impl FnMut(u16, u8)) -> Result<usize, Error> {
        let mut pos = 16;
        let mut done = 0u16;
        let mut seq = self.base;
        let mut emit = |symbol: u8, done: &mut u16| {
            f(seq, symbol);
            seq = seq.wrapping_add(1);
            *done += 1;
        };
        while done < self.count {
            let chunk = be_u16(self.body, pos).ok_or(Error::TooShort)?;
            pos += 2;
            if chunk & 0x8000 == 0 {
                let symbol = (chunk >> 13) as u8 & 0x3;
                let run = (chunk & MAX_RUN_LENGTH).min(self.count - done);
                for _ in 0..run {
                    emit(symbol, &mut done);
                }
            } else if chunk & 0x4000 == 0 {
                for i in 0..ONE_BIT_CAPACITY {
                    if done < self.count {
                        emit((chunk >> (13 - i)) as u8 & 0x1, &mut done);
                    }
                }
            } else {
                for i in 0..TWO_BIT_CAPACITY {
                    if done < self.count {
                        emit((chunk >> (12 - 2 * i)) as u8 & 0x3, &mut done);
                    }
                }
            }
        }
        Ok(pos)
    }
}

/// Decodes a transport-cc feedback packet's statuses: calls f(seq, received) for each packet
/// it covers (used by the bridge to account, and by tests).
///
/// `raw` is the whole RTCP packet (as in `Packet::TransportCc::raw`). The packet is validated
/// completely before `f` is first called.
pub fn for_each_twcc_status(raw: &[u8], mut f: impl FnMut(u16, bool)) -> Result<(), Error> {
    let feedback = Feedback::parse(raw)?;
    feedback.walk(|seq, symbol| f(seq, symbol != SYM_NOT_RECEIVED))?;
    Ok(())
}

/// Like [`for_each_twcc_status`], with each received packet's arrival time in µs on the
/// feedback sender's clock (reference time plus the accumulated receive deltas); `None` for
/// packets not received.
pub fn for_each_twcc_arrival(raw: &[u8], mut f: impl FnMut(u16, Option<i64>)) -> Result<(), Error> {
    let feedback = Feedback::parse(raw)?;
    let body = feedback.body;
    let mut at = feedback.deltas_at;
    let mut arrival = feedback.reference_us;
    feedback.walk(|seq, symbol| {
        let ticks = match symbol {
            SYM_SMALL_DELTA => {
                let d = body.get(at).copied().map(i64::from);
                at += 1;
                d
            }
            SYM_LARGE_DELTA => {
                let d = be_u16(body, at).map(|v| i64::from(v as i16));
                at += 2;
                d
            }
            _ => None,
        };
        match ticks {
            Some(t) => {
                arrival += t * DELTA_TICK_US;
                f(seq, Some(arrival));
            }
            None => f(seq, None),
        }
    })?;
    Ok(())
}
