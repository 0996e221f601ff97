//! The two reference JSON bodies the benchmarks (and the compression tests) use, generated
//! deterministically so that any length can be had and every run sees the same bytes:
//!
//! - [`Kind::Sequential`]: records with sequential ids, names and timestamps, and numbers —
//!   what a paginated listing API returns. zstd level 3 shrinks it about six times.
//! - [`Kind::Random`]: records with random UUIDs, e-mail addresses and amounts — about four
//!   times.
//!
//! Never a repeated byte: a body of one byte repeated compresses a thousand times and says
//! nothing about real traffic. `json(kind, len)` is the array's first `len` bytes (cut inside
//! a record when `len` falls there), so a shorter body is a prefix of a longer one.

#![allow(dead_code)]

/// Which reference body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sequential ids, names, timestamps; numbers.
    Sequential,
    /// Random UUIDs, e-mail addresses, amounts.
    Random,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Sequential, Kind::Random];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Sequential => "sequential",
            Kind::Random => "random",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// splitmix64: a tiny, well-known generator; the seed fixes the bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const FIRST_NAMES: [&str; 16] = [
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Donald",
    "Edsger",
    "Frances",
    "Grace",
    "John",
    "Ken",
    "Leslie",
    "Margaret",
    "Niklaus",
    "Radia",
    "Tony",
    "Whitfield",
];
const CITIES: [&str; 8] = [
    "Berlin",
    "Lisbon",
    "Nairobi",
    "Osaka",
    "Seattle",
    "Toronto",
    "Valparaiso",
    "Warsaw",
];

fn record(kind: Kind, i: u64, rng: &mut Rng, out: &mut String) {
    use std::fmt::Write;
    match kind {
        Kind::Sequential => {
            // One record a minute from 2026-01-01T00:00:00Z.
            let t = i * 60;
            let (d, h, m) = (t / 86_400, t / 3600 % 24, t / 60 % 60);
            let _ = write!(
                out,
                r#"{{"id":{},"name":"{} {}","city":"{}","created_at":"2026-{:02}-{:02}T{:02}:{:02}:00Z","orders":{},"balance":{}.{:02},"rating":{},"active":{}}}"#,
                100_000 + i,
                FIRST_NAMES[(i % 16) as usize],
                i,
                CITIES[(i / 16 % 8) as usize],
                d / 28 % 12 + 1,
                d % 28 + 1,
                h,
                m,
                rng.below(50),
                rng.below(10_000),
                rng.below(100),
                rng.below(1000),
                !i.is_multiple_of(7),
            );
        }
        Kind::Random => {
            let (a, b) = (rng.next(), rng.next());
            let _ = write!(
                out,
                r#"{{"id":"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}","email":"{}.{}{}@{}.example","amount":{}.{:02},"currency":"{}","status":"{}"}}"#,
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                (b >> 48) | 0x8000,
                b & 0xffff_ffff_ffff,
                FIRST_NAMES[rng.below(16) as usize].to_lowercase(),
                CITIES[rng.below(8) as usize].to_lowercase(),
                rng.below(100),
                ["mail", "post", "inbox", "corp"][rng.below(4) as usize],
                rng.below(100_000),
                rng.below(100),
                ["EUR", "USD", "JPY", "GBP"][rng.below(4) as usize],
                ["settled", "pending", "refunded"][rng.below(3) as usize],
            );
        }
    }
}

/// The first `len` bytes of the reference array of `kind`.
pub fn json(kind: Kind, len: usize) -> Vec<u8> {
    let mut rng = Rng(match kind {
        Kind::Sequential => 1,
        Kind::Random => 2,
    });
    let mut out = String::with_capacity(len + 256);
    out.push('[');
    let mut i = 0;
    while out.len() < len {
        if i > 0 {
            out.push(',');
        }
        record(kind, i, &mut rng, &mut out);
        i += 1;
    }
    let mut bytes = out.into_bytes();
    bytes.truncate(len);
    bytes
}

/// `len` bytes that do not compress (xorshift), the same for the same `len`.
pub fn noise(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}
