//! Byte mutations and case budgets for the fuzz (property) tests of every reader of bytes from
//! disk or from users. Shared by the storage tests and the root crate's `tests/fuzz_parsers.rs`
//! (included there by path), so both fuzz the same way.
//!
//! A reader is fuzzed two ways: with arbitrary bytes, which mostly exercise its first checks,
//! and with a few mutations of a valid input (a flipped bit, a byte set to a value parsers
//! treat specially, a cut, an inserted token, a removed or repeated span), which get past the
//! first checks and reach the deep ones.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;

/// Environment variable that sets the number of cases of every fuzz property (the suite's own
/// counts are small so that CI stays fast; `scripts/fuzz.sh` raises it).
pub const CASES_VAR: &str = "OPTICAL_FUZZ_CASES";

/// The proptest configuration of a fuzz property: `default` cases, or `$OPTICAL_FUZZ_CASES`.
pub fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var(CASES_VAR).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// One edit of a byte string. Positions are drawn as [`Index`]es so that they fit any length.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Flip one bit.
    Flip(Index, u8),
    /// Overwrite one byte.
    Set(Index, u8),
    /// Cut the input at a position.
    Truncate(Index),
    /// Insert bytes before a position.
    Insert(Index, Vec<u8>),
    /// Remove up to `n` bytes from a position.
    Remove(Index, usize),
    /// Copy a span of up to `n` bytes to another position (repeats structure: a second line, a
    /// duplicated field).
    Repeat(Index, usize, Index),
}

/// Bytes and tokens that parsers of text formats treat specially.
const TOKENS: &[&str] = &[
    "\n", "\t", "\r\n", "\0", " ", "\"", "\\", "{", "}", "[", "]", ",", ":", "=", "#", "-1", "0",
    "1e999", "NaN", "inf", "-0", "null", "true", "4294967296", "18446744073709551616", "\u{feff}",
    "\u{fffd}", "é",
];

fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![any::<u8>(), prop::sample::select(vec![0u8, 0x7f, 0x80, 0xff, b'\n', b'\t', b'"', b'0', b'9'])]
}

fn inserted() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 1..8),
        prop::sample::select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
        // A little-endian number: a count or an offset in a binary header.
        prop_oneof![Just(0u64), Just(1), Just(u32::MAX as u64), Just(u64::MAX), any::<u64>()]
            .prop_map(|n| n.to_le_bytes().to_vec()),
    ]
}

/// One mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<Index>(), byte()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), inserted()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), 1usize..64, any::<Index>()).prop_map(|(i, n, j)| Mutation::Repeat(i, n, j)),
    ]
}

/// One to `max` mutations.
pub fn mutations(max: usize) -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..=max)
}

/// Applies `muts` in order to a copy of `input`.
pub fn apply(input: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = input.to_vec();
    for m in muts {
        match m {
            Mutation::Flip(i, bit) if !b.is_empty() => {
                let at = i.index(b.len());
                b[at] ^= 1 << bit;
            }
            Mutation::Set(i, v) if !b.is_empty() => {
                let at = i.index(b.len());
                b[at] = *v;
            }
            Mutation::Truncate(i) => {
                let at = i.index(b.len() + 1);
                b.truncate(at);
            }
            Mutation::Insert(i, bytes) => {
                let at = i.index(b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Remove(i, n) if !b.is_empty() => {
                let at = i.index(b.len());
                let end = (at + n).min(b.len());
                b.drain(at..end);
            }
            Mutation::Repeat(i, n, j) if !b.is_empty() => {
                let from = i.index(b.len());
                let span: Vec<u8> = b[from..(from + n).min(b.len())].to_vec();
                let at = j.index(b.len() + 1);
                b.splice(at..at, span);
            }
            _ => {}
        }
    }
    b
}

/// Arbitrary bytes of length below `max`.
pub fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}
