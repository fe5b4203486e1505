//! The fuzz targets without libFuzzer: each `check` runs over its committed
//! seeds (`fuzz/seeds/<target>/`, which also hold every input a fuzzing run
//! found failing, once fixed) and over inputs generated from them by a
//! seeded mutator — the same bytes → `Input` decoding as under libFuzzer
//! (`arbitrary_take_rest`). A smoke run for CI, not a fuzzer: no coverage
//! feedback. `EAGATE_FUZZ_SMOKE_INPUTS` sets the generated inputs per
//! target (default 3000); `just fuzz` runs the real thing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use arbitrary::{Arbitrary, Unstructured};

/// splitmix64: a seeded, reproducible byte source.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!seeds.is_empty(), "{} has seeds", dir.display());
    seeds
}

/// A seed with a few random edits (flip, insert, delete, overwrite,
/// splice another seed), or fresh random bytes.
fn mutant(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if rng.below(8) == 0 {
        return (0..rng.below(300)).map(|_| rng.byte()).collect();
    }
    let mut bytes = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
            1 => bytes.insert(at, rng.byte()),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 if at < bytes.len() => {
                bytes[at] = *b"\0\n\"%./?{}:,-0123456789eafz".get(rng.below(26)).unwrap_or(&0)
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                bytes.splice(at..at, other[from..].iter().take(rng.below(40)).copied());
            }
        }
    }
    bytes
}

fn run<'a, I: Arbitrary<'a>>(_target: &str, bytes: &'a [u8], check: fn(I)) {
    if let Ok(input) = I::arbitrary_take_rest(Unstructured::new(bytes)) {
        check(input);
    }
}

fn smoke(target: &str, each: for<'a> fn(&str, &'a [u8])) {
    let seeds = seeds(target);
    for seed in &seeds {
        each(target, seed);
    }
    let inputs = std::env::var("EAGATE_FUZZ_SMOKE_INPUTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng(0x00ea_6a7e ^ target.len() as u64);
    for _ in 0..inputs {
        let bytes = mutant(&mut rng, &seeds);
        each(target, &bytes);
    }
}

#[test]
fn signed_request() {
    smoke("signed_request", |t, b| {
        run(t, b, eagate_fuzzing::signed_request::check)
    });
}

#[test]
fn json_bodies() {
    smoke("json_bodies", |t, b| {
        run(t, b, eagate_fuzzing::json_bodies::check)
    });
}

#[test]
fn jwt() {
    smoke("jwt", |t, b| run(t, b, eagate_fuzzing::jwt::check));
}

#[test]
fn cursor_query() {
    smoke("cursor_query", |t, b| {
        run(t, b, eagate_fuzzing::cursor_query::check)
    });
}
