//! Who speaks: each audio sender's speech activity from the RFC 6464 audio level of its
//! packets, and a conference's dominant speaker with hysteresis. Pure logic, time passed in as
//! ticks: the core notes each audio packet's level ([`SpeechActivity::on_level`], a few
//! integer operations on fixed-size state) and closes a bucket of every sender every
//! [`BUCKET`]; then [`Dominance::decide`] may name a new dominant speaker.
//!
//! In the way of Jitsi's dominant speaker identification (speech measured on several time
//! scales, a competitor must beat the current speaker clearly), with simpler state:
//!
//! - A packet is **loud** when its level is above [`SPEECH_MIN_DBOV`] and at least
//!   [`ABOVE_FLOOR_DB`] above the sender's noise floor: the quietest level it sent over the
//!   last [`FLOOR_SECONDS`] seconds (so a steady fan, hum or any constant sound never counts,
//!   while speech, with its pauses, does). Muted and silent senders send level 127 (−127 dBov)
//!   or nothing: never loud.
//! - A [`BUCKET`] of 100 ms is **speech** when most of its packets were loud.
//! - A sender becomes dominant when it has at least [`MIN_SPEECH_BUCKETS`] buckets of speech
//!   in the last 2 s (a cough, a door, a single loud packet are shorter), and at least
//!   [`SWITCH_MARGIN`] more in the last second than the current dominant speaker: someone who
//!   starts talking into silence takes over after 0.5 s of speech, someone who takes over from
//!   a speaker who stops after about 0.7 s, and two talking at once do not swap.

/// One bucket of speech activity; the core closes every sender's bucket this often.
pub const BUCKET: std::time::Duration = std::time::Duration::from_millis(100);
/// Quieter than this (dBov) is never speech.
pub const SPEECH_MIN_DBOV: u8 = 55;
/// A loud packet is at least this much above its sender's noise floor (dB).
pub const ABOVE_FLOOR_DB: u8 = 10;
/// The noise floor is the quietest level over this many seconds.
pub const FLOOR_SECONDS: usize = 8;
/// Buckets in one second and in the long window.
const SHORT_BUCKETS: u32 = 10;
const LONG_BUCKETS: u32 = 20;
/// Buckets of speech in the long window a sender needs to become dominant.
pub const MIN_SPEECH_BUCKETS: u32 = 5;
/// Buckets of speech in the last second by which a competitor must beat the dominant speaker.
pub const SWITCH_MARGIN: u32 = 3;
/// Most previous speakers remembered (and sent to clients).
pub const MAX_PREVIOUS_SPEAKERS: usize = 16;

/// Loudness from the level byte of an `ssrc-audio-level` extension (V bit, then −dBov in 7
/// bits): 0 for −127 dBov (silence) up to 127 for 0 dBov.
fn loudness(byte: u8) -> u8 {
    127 - (byte & 0x7f)
}

/// No level seen yet in a slot of the floor window.
const NO_LEVEL: u8 = u8::MAX;

/// One audio sender's recent speech activity. Fixed size; nothing allocated.
#[derive(Clone, Debug)]
pub struct SpeechActivity {
    /// The open bucket: packets and loud packets.
    packets: u8,
    loud: u8,
    /// Sum of the open bucket's loudness above the floor.
    above_floor: u16,
    /// Bit `i` set: the bucket closed `i` buckets ago was speech.
    history: u32,
    /// Quietest loudness of the current second, and of each of the seconds before.
    second_min: u8,
    minima: [u8; FLOOR_SECONDS],
    next_minimum: usize,
    /// The quietest of `minima`.
    floor_before: u8,
    buckets_this_second: u32,
    /// Smoothed loudness above the floor of recent buckets (for ranking the loudest).
    recent_loudness: u16,
}

impl Default for SpeechActivity {
    fn default() -> Self {
        Self {
            packets: 0,
            loud: 0,
            above_floor: 0,
            history: 0,
            second_min: NO_LEVEL,
            minima: [NO_LEVEL; FLOOR_SECONDS],
            next_minimum: 0,
            floor_before: NO_LEVEL,
            buckets_this_second: 0,
            recent_loudness: 0,
        }
    }
}

/// What a sender's activity says, for [`Dominance::decide`] and loudest-K ranking.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Score {
    /// Buckets of speech in the last second.
    pub short: u32,
    /// Buckets of speech in the last two seconds.
    pub long: u32,
    /// Recent loudness above the noise floor.
    pub loudness: u16,
}

impl Score {
    /// The better of two senders of one participant.
    pub fn max(self, other: Score) -> Score {
        if (other.short, other.long, other.loudness) > (self.short, self.long, self.loudness) {
            other
        } else {
            self
        }
    }
}

impl SpeechActivity {
    /// One packet's audio level byte.
    pub fn on_level(&mut self, byte: u8) {
        let loudness = loudness(byte);
        self.second_min = self.second_min.min(loudness);
        let floor = self.floor_before.min(self.second_min);
        self.packets = self.packets.saturating_add(1);
        let above = loudness - floor;
        if loudness >= 127 - SPEECH_MIN_DBOV && above >= ABOVE_FLOOR_DB {
            self.loud = self.loud.saturating_add(1);
        }
        self.above_floor = self.above_floor.saturating_add(u16::from(above));
    }

    /// Closes the open bucket (every [`BUCKET`]).
    pub fn close_bucket(&mut self) {
        let speech = self.loud > 0 && u16::from(self.loud) * 2 > u16::from(self.packets);
        self.history = (self.history << 1) | u32::from(speech);
        let bucket_loudness = match self.packets {
            0 => 0,
            n => self.above_floor / u16::from(n),
        };
        self.recent_loudness = (self.recent_loudness * 3 + bucket_loudness) / 4;
        self.packets = 0;
        self.loud = 0;
        self.above_floor = 0;
        self.buckets_this_second += 1;
        if self.buckets_this_second == SHORT_BUCKETS {
            self.buckets_this_second = 0;
            self.minima[self.next_minimum] = self.second_min;
            self.next_minimum = (self.next_minimum + 1) % FLOOR_SECONDS;
            self.floor_before = self.minima.iter().copied().min().unwrap_or(NO_LEVEL);
            self.second_min = NO_LEVEL;
        }
    }

    pub fn score(&self) -> Score {
        let window = |buckets: u32| (self.history & ((1u32 << buckets) - 1)).count_ones();
        Score {
            short: window(SHORT_BUCKETS),
            long: window(LONG_BUCKETS),
            loudness: self.recent_loudness,
        }
    }
}

/// A conference's dominant speaker and the order of its speakers, most recent first. `K`
/// names a participant.
#[derive(Clone, Debug)]
pub struct Dominance<K> {
    dominant: Option<K>,
    /// Everyone who was dominant, most recently first (the dominant speaker first).
    order: Vec<K>,
}

impl<K> Default for Dominance<K> {
    fn default() -> Self {
        Self {
            dominant: None,
            order: Vec::new(),
        }
    }
}

impl<K: Copy + PartialEq> Dominance<K> {
    pub fn dominant(&self) -> Option<K> {
        self.dominant
    }

    /// The participants who were dominant, most recently first (the current one first).
    pub fn order(&self) -> &[K] {
        &self.order
    }

    /// Given every sender's score now, names a new dominant speaker (returned) or keeps the
    /// current one (`None`). Ties go to the sender listed first.
    pub fn decide(&mut self, scores: impl IntoIterator<Item = (K, Score)>) -> Option<K> {
        let mut current = 0;
        let mut best: Option<(K, Score)> = None;
        for (k, score) in scores {
            if Some(k) == self.dominant {
                current = current.max(score.short);
                continue;
            }
            if score.long < MIN_SPEECH_BUCKETS {
                continue;
            }
            if best.is_none_or(|(_, b)| (score.short, score.long) > (b.short, b.long)) {
                best = Some((k, score));
            }
        }
        let (k, score) = best?;
        if score.short < current + SWITCH_MARGIN {
            return None;
        }
        self.dominant = Some(k);
        self.order.retain(|o| *o != k);
        self.order.insert(0, k);
        self.order.truncate(MAX_PREVIOUS_SPEAKERS + 1);
        Some(k)
    }

    /// Forgets a participant who left (without naming anyone else: the next who speaks will
    /// be).
    pub fn remove(&mut self, k: K) {
        if self.dominant == Some(k) {
            self.dominant = None;
        }
        self.order.retain(|o| *o != k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An audio level byte for `dbov` below full scale.
    fn level(dbov: u8) -> u8 {
        dbov.min(127)
    }

    /// What a sender sends in one 100 ms bucket: five 20 ms packets' levels (−dBov).
    type Bucket = [u8; 5];

    const SILENCE: Bucket = [127; 5];
    /// Speech: syllables around −25 dBov with a dip.
    const TALK: Bucket = [24, 22, 30, 26, 38];
    /// A pause in speech over a quiet room.
    const PAUSE: Bucket = [62, 60, 64, 61, 63];

    /// Speech as people talk: 700 ms of syllables, 300 ms of pause, repeated.
    fn speech(buckets: usize) -> Vec<Bucket> {
        (0..buckets)
            .map(|i| if i % 10 < 7 { TALK } else { PAUSE })
            .collect()
    }

    fn silence(buckets: usize) -> Vec<Bucket> {
        vec![SILENCE; buckets]
    }

    /// Runs senders' bucket sequences side by side (`None` when a sender's sequence ended:
    /// silence); returns the dominant speaker after each bucket.
    fn run(
        dominance: &mut Dominance<usize>,
        senders: &mut [SpeechActivity],
        sequences: &[Vec<Bucket>],
    ) -> Vec<Option<usize>> {
        let len = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut dominant = Vec::new();
        for b in 0..len {
            for (sender, sequence) in senders.iter_mut().zip(sequences) {
                for l in sequence.get(b).unwrap_or(&SILENCE) {
                    sender.on_level(level(*l));
                }
                sender.close_bucket();
            }
            dominance.decide(senders.iter().map(SpeechActivity::score).enumerate());
            dominant.push(dominance.dominant());
        }
        dominant
    }

    /// The bucket at which the dominant speaker first became `who`.
    fn first(dominant: &[Option<usize>], who: usize) -> Option<usize> {
        dominant.iter().position(|d| *d == Some(who))
    }

    #[test]
    fn a_speaker_in_a_silent_room_becomes_dominant_in_under_a_second() {
        let mut d = Dominance::default();
        let mut s = vec![SpeechActivity::default(); 3];
        let mut one = silence(20);
        one.extend(speech(30));
        let got = run(&mut d, &mut s, &[silence(50), one, silence(50)]);
        let at = first(&got, 1).expect("the speaker becomes dominant");
        assert!((24..=28).contains(&at), "after {} ms", (at + 1 - 20) * 100);
        assert!(
            got[at..].iter().all(|g| *g == Some(1)),
            "and stays: {got:?}"
        );
        assert_eq!(d.order(), [1]);
    }

    #[test]
    fn a_cough_or_a_single_loud_packet_does_not_switch() {
        let mut d = Dominance::default();
        let mut s = vec![SpeechActivity::default(); 2];
        // A speaks for 3 s, then keeps talking; B coughs 400 ms at 4 s, and one packet at 6 s.
        let mut b = silence(40);
        b.extend([[8, 6, 10, 7, 9]; 4]);
        b.extend(silence(16));
        b.push([127, 127, 0, 127, 127]);
        b.extend(silence(20));
        let got = run(&mut d, &mut s, &[speech(81), b]);
        assert!(first(&got, 0).is_some());
        assert_eq!(first(&got, 1), None, "B never wins: {got:?}");
        // Even when A is silent, a cough does not take over.
        let mut d = Dominance::default();
        let mut s = vec![SpeechActivity::default(); 2];
        let mut a = speech(20);
        a.extend(silence(40));
        let mut b = silence(40);
        b.extend([[8, 6, 10, 7, 9]; 4]);
        b.extend(silence(20));
        let got = run(&mut d, &mut s, &[a, b]);
        assert_eq!(first(&got, 1), None, "{got:?}");
        assert_eq!(
            got.last(),
            Some(&Some(0)),
            "the last speaker stays dominant"
        );
    }

    #[test]
    fn steady_noise_never_wins_however_loud_and_speech_over_noise_does() {
        let mut d = Dominance::default();
        let mut s = vec![SpeechActivity::default(); 3];
        // A: a loud fan at −30 dBov with a few dB of jitter, for 10 s. B: a quiet room, then
        // speech from 5 s. C: speech over a −45 dBov hum, from 8 s.
        let fan: Vec<Bucket> = (0..100u8)
            .map(|i| [30 + i % 3, 31, 29 + i % 2, 32, 30])
            .collect();
        let mut b = vec![PAUSE; 50];
        b.extend(speech(30));
        b.extend(vec![PAUSE; 20]);
        let hum = [45, 46, 44, 45, 45];
        let mut c = vec![hum; 80];
        c.extend((0..20).map(|i| {
            if i % 10 < 7 {
                [22, 20, 28, 25, 30]
            } else {
                hum
            }
        }));
        let got = run(&mut d, &mut s, &[fan, b, c]);
        assert_eq!(first(&got, 0), None, "the fan never wins: {got:?}");
        let b_at = first(&got, 1).expect("B's speech wins");
        assert!((54..=58).contains(&b_at), "B at {b_at}");
        // B stopped at 8 s: C, speaking over its hum, takes over.
        assert_eq!(got.last(), Some(&Some(2)), "{got:?}");
        assert_eq!(d.order(), [2, 1]);
    }

    #[test]
    fn a_real_change_of_speaker_is_detected_within_a_second_and_overlap_does_not_swap() {
        let mut d = Dominance::default();
        let mut s = vec![SpeechActivity::default(); 2];
        // A talks for 5 s and stops; B starts as A stops and talks for 5 s.
        let mut a = speech(50);
        a.extend(silence(50));
        let mut b = silence(50);
        b.extend(speech(50));
        let got = run(&mut d, &mut s, &[a.clone(), b]);
        let at = first(&got, 1).expect("B takes over");
        let latency_ms = (at + 1 - 50) * 100;
        assert!((500..=1000).contains(&latency_ms), "{latency_ms} ms");
        // Both talk from 5 s on: A, dominant, stays.
        let mut d = Dominance::default();
        let mut s = vec![SpeechActivity::default(); 2];
        let mut b = silence(50);
        b.extend(speech(50));
        let got = run(&mut d, &mut s, &[speech(100), b]);
        assert_eq!(first(&got, 1), None, "{got:?}");
    }

    #[test]
    fn muted_and_absent_senders_never_win_and_a_leaver_is_forgotten() {
        let mut d = Dominance::default();
        let mut s = vec![SpeechActivity::default(); 2];
        // A sends silence (muted); B sends nothing at all (an empty sequence).
        let got = run(&mut d, &mut s, &[silence(50), Vec::new()]);
        assert!(got.iter().all(Option::is_none), "{got:?}");
        let got = run(&mut d, &mut s, &[speech(20), Vec::new()]);
        assert_eq!(got.last(), Some(&Some(0)));
        d.remove(0);
        assert_eq!(d.dominant(), None);
        assert!(d.order().is_empty());
    }

    #[test]
    fn the_speaker_order_is_most_recent_first_and_bounded() {
        let mut d = Dominance::default();
        let scores = |who: usize| {
            (0..40).map(move |k| {
                let talking = Score {
                    short: 10,
                    long: 20,
                    loudness: 40,
                };
                (k, if k == who { talking } else { Score::default() })
            })
        };
        for who in [3, 5, 3, 7] {
            assert_eq!(d.decide(scores(who)), Some(who));
            assert_eq!(d.decide(scores(who)), None, "no change while it talks");
        }
        assert_eq!(d.order(), [7, 3, 5]);
        for who in 0..40 {
            d.decide(scores(who));
        }
        assert_eq!(d.order().len(), MAX_PREVIOUS_SPEAKERS + 1);
        assert_eq!(d.order()[0], 39);
    }

    #[test]
    fn the_noise_floor_rises_when_the_room_gets_louder_and_falls_at_once() {
        let mut a = SpeechActivity::default();
        let feed = |a: &mut SpeechActivity, bucket: Bucket, n: usize| {
            for _ in 0..n {
                for l in bucket {
                    a.on_level(l);
                }
                a.close_bucket();
            }
        };
        // A quiet room, then a constant −30 dBov sound: loud at first...
        feed(&mut a, PAUSE, 30);
        feed(&mut a, [30; 5], 10);
        assert_eq!(a.score().short, 10);
        // ...noise once it lasted longer than the floor's window.
        feed(&mut a, [30; 5], 10 * FLOOR_SECONDS + 20);
        assert_eq!(a.score().long, 0);
        // Quiet again: speech is loud at once.
        feed(&mut a, PAUSE, 1);
        feed(&mut a, TALK, 3);
        assert_eq!(a.score().short, 3);
    }
}
