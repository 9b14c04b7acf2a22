//! [`SampleRing`]: the bounded buffer of 16 kHz samples that utterance capture listens in. It
//! drops the oldest samples when full and counts them, addresses samples by their index in the
//! whole stream, and is wiped on drop.
//!
//! It sits beside `ring.rs` rather than inside it: that queue hands items from a device's
//! thread to its reader (locked, waited on, and compiled only with the `camera` or `microphone`
//! feature), while this buffer has one owner, never waits, and serves every capture path,
//! files included.

use std::collections::VecDeque;

use zeroize::Zeroize;

/// A bounded buffer of samples that drops the oldest when full, counting what it dropped.
///
/// It never grows past its capacity, whatever a device delivers; a consumer that falls behind
/// loses the oldest audio and can see how much. Samples are addressed by their index in the
/// whole stream ([`SampleRing::offset`] is the index of the oldest held). Wiped on drop.
pub struct SampleRing {
    buf: VecDeque<f32>,
    capacity: usize,
    offset: u64,
    dropped: u64,
    overflows: u64,
}

impl std::fmt::Debug for SampleRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleRing")
            .field("len", &self.buf.len())
            .field("capacity", &self.capacity)
            .field("offset", &self.offset)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

impl SampleRing {
    /// An empty ring holding at most `capacity` samples (at least 1).
    pub fn new(capacity: usize) -> SampleRing {
        let capacity = capacity.max(1);
        SampleRing {
            buf: VecDeque::with_capacity(capacity),
            capacity,
            offset: 0,
            dropped: 0,
            overflows: 0,
        }
    }

    /// The most samples held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Stream index of the oldest sample held.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Stream index one past the newest sample: how many samples were ever pushed.
    pub fn end(&self) -> u64 {
        self.offset + self.buf.len() as u64
    }

    /// Samples lost because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Pushes that overflowed (each dropped at least one sample).
    pub fn overflows(&self) -> u64 {
        self.overflows
    }

    /// Appends samples; when they do not fit, the oldest are dropped and counted.
    pub fn push(&mut self, samples: &[f32]) {
        let excess = (self.buf.len() + samples.len()).saturating_sub(self.capacity);
        if excess > 0 {
            self.overflows += 1;
            self.dropped += excess as u64;
            // Samples older than the last `capacity` pushed never enter the buffer.
            let skip = samples.len().saturating_sub(self.capacity);
            self.forget(excess - skip);
            self.offset += skip as u64;
            self.buf.extend(&samples[skip..]);
        } else {
            self.buf.extend(samples);
        }
    }

    /// Drops the `n` oldest samples on purpose (not counted as overflow).
    pub fn discard_oldest(&mut self, n: usize) {
        self.forget(n.min(self.buf.len()));
    }

    /// The held samples, oldest first, as one slice.
    pub fn as_slice(&mut self) -> &[f32] {
        self.buf.make_contiguous()
    }

    fn forget(&mut self, n: usize) {
        for mut v in self.buf.drain(..n) {
            v.zeroize();
        }
        self.offset += n as u64;
    }
}

impl Drop for SampleRing {
    fn drop(&mut self) {
        self.buf.iter_mut().for_each(Zeroize::zeroize);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_drops_the_oldest_and_counts_it() {
        let mut ring = SampleRing::new(4);
        ring.push(&[1.0, 2.0, 3.0]);
        assert_eq!((ring.len(), ring.dropped(), ring.overflows()), (3, 0, 0));
        ring.push(&[4.0, 5.0]);
        assert_eq!(ring.as_slice(), [2.0, 3.0, 4.0, 5.0]);
        assert_eq!(
            (ring.offset(), ring.end(), ring.dropped(), ring.overflows()),
            (1, 5, 1, 1)
        );
        // A push larger than the ring keeps only its newest samples.
        ring.push(&[6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
        assert_eq!(ring.as_slice(), [8.0, 9.0, 10.0, 11.0]);
        assert_eq!(
            (ring.offset(), ring.end(), ring.dropped(), ring.overflows()),
            (7, 11, 7, 2)
        );
        // Discarding on purpose is not an overflow.
        ring.discard_oldest(3);
        assert_eq!(ring.as_slice(), [11.0]);
        assert_eq!((ring.offset(), ring.dropped()), (10, 7));
        ring.discard_oldest(9);
        assert!(ring.is_empty());
        assert_eq!(ring.capacity(), 4);
        assert_eq!(SampleRing::new(0).capacity(), 1);
    }
}
