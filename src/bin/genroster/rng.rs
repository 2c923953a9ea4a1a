//! The PRNG: splitmix64, one independent stream per (seed, purpose, row index).

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 finaliser: a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Independent random streams, so that e.g. the leaver roll can be computed without
/// generating the whole person, and churn never perturbs a row's base content.
#[derive(Clone, Copy)]
pub(super) enum Stream {
    Person = 1,
    Leaver = 2,
    Churn = 3,
    Update = 4,
    Username = 5,
}

/// splitmix64: tiny, fast, and plenty good for test data.
pub(super) struct Rng(u64);

impl Rng {
    /// The stream for `(seed, stream, index)`. `mix64` is a bijection, so distinct indices
    /// get distinct starting states for a given seed and stream.
    pub(super) fn new(seed: u64, stream: Stream, index: u64) -> Rng {
        let key = mix64(seed ^ (stream as u64).wrapping_mul(GOLDEN_GAMMA));
        Rng(mix64(key ^ index))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN_GAMMA);
        mix64(self.0)
    }

    /// Uniform in `0..n` (multiply-high; the bias for small n is negligible). `n` must be > 0.
    pub(super) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    pub(super) fn below_usize(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// True with probability `pct`/100. Exact for 0 and 100.
    pub(super) fn percent(&mut self, pct: f64) -> bool {
        // 53 random bits -> [0, 1); IEEE arithmetic keeps this identical on every platform.
        let unit = (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        unit * 100.0 < pct
    }

    /// Index into a list, skewed towards the front (density falls linearly from 2x the
    /// mean at the head to ~0 at the tail), so early "common" names dominate.
    pub(super) fn pick_skewed(&mut self, len: usize) -> usize {
        self.below_usize(len).min(self.below_usize(len))
    }

    pub(super) fn pick_weighted<T>(&mut self, items: &[T], weight: impl Fn(&T) -> u32) -> usize {
        let total: u64 = items.iter().map(|i| u64::from(weight(i))).sum();
        let mut roll = self.below(total);
        for (i, item) in items.iter().enumerate() {
            let w = u64::from(weight(item));
            if roll < w {
                return i;
            }
            roll -= w;
        }
        items.len() - 1
    }

    /// A value in `0..n` different from `current` (n >= 2).
    pub(super) fn other_than(&mut self, current: usize, n: usize) -> usize {
        (current + 1 + self.below_usize(n - 1)) % n
    }
}
