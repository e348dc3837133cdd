//! The bounded fuzz run of the test suite: every target of `smtool::fuzzing` over its corpus
//! (`fuzz/corpus/TARGET/`) and a fixed number of deterministic mutations of it. An input
//! passes when the target returns: no panic, no stack overflow, and no more than
//! `bounded_alloc::LIMIT` bytes allocated at once. Long, coverage-guided runs: `scripts/fuzz.sh`.
//!
//! An input that panics is saved as `target/tmp/fuzz/TARGET.crash`. One that aborts the
//! process (an allocation over the limit, a stack overflow) names its target; with
//! `SMTOOL_FUZZ_SAVE=1` each input is written to `target/tmp/fuzz/TARGET.input` before it
//! runs, so the last one is on disk. Replay either with `scripts/fuzz.sh TARGET --replay FILE`.

use std::path::{Path, PathBuf};

#[path = "../fuzz/src/bounded_alloc.rs"]
mod bounded_alloc;

#[global_allocator]
static ALLOCATOR: bounded_alloc::Bounded = bounded_alloc::Bounded;

/// Mutations per target; `SMTOOL_FUZZ_MUTATIONS` overrides.
const MUTATIONS: usize = 50_000;

/// xorshift64*: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn new(seed: &str) -> Self {
        // FNV-1a of the seed.
        let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        Rng(h | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Tokens worth inserting: JSON structure and edge values for the REST readers, varints and
/// lengths for the binary formats.
const TOKENS: &[&[u8]] = &[
    b"[",
    b"]",
    b"{",
    b"}",
    b"[[[[[[[[",
    b"]]]]",
    b",",
    b":",
    b"\"",
    b"\"instances\":",
    b"\"inputs\":",
    b"\"examples\":",
    b"\"context\":",
    b"\"signature_name\":",
    b"{\"b64\":\"AAE=\"}",
    b"{\"b64\":\"!!\"}",
    b"\"x\":",
    b"\"y\":",
    b"NaN",
    b"-Infinity",
    b"1e308",
    b"-1e999",
    b"0.1",
    b"-0",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"4294967296",
    b"true",
    b"null",
    b"\"\\ud800\"",
    b"\"\\u0000\"",
    b"\xff\xff\xff\xff\x0f",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\x7f",
    b"\x80\x80\x80\x80\x08",
    b"\xff\xff\xff\x7f",
    b"\x00\x00\x00\x80",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"\x0a\xff\xff\x03",
    b"\x12\x80\x80\x04",
    b"dim { size: -1 }",
    b"dim { size: 1099511627776 }",
    b"tensor_shape { dim { size: 1000000000 } }",
    b"{ { { { { { { {",
];

const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'[', b']', b'{', b'}', b'"', b',', b'9',
];

/// One mutation of `input`, which it changes in place; `others` feeds splices. A text input
/// mostly stays text (new bytes ASCII, bit flips below the top bit), so that mutations reach
/// past the readers' UTF-8 checks.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, others: &[Vec<u8>], max_len: usize) {
    let len = input.len();
    let text = std::str::from_utf8(input).is_ok() && rng.below(8) != 0;
    let random_byte = |rng: &mut Rng| {
        let b = rng.next() as u8;
        if text {
            b' ' + b % 95
        } else {
            b
        }
    };
    match rng.below(9) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(if text { 7 } else { 8 });
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = *rng.pick(INTERESTING);
        }
        2 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| random_byte(rng)).collect();
            input.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(1 + len / 4));
            input.drain(at..at + n);
        }
        4 if len > 0 => {
            // Repeats a slice: nesting and counts grow, as in amplification attacks.
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            let piece = input[at..at + n].to_vec();
            let times = 1 + rng.below(16);
            let to = rng.below(len + 1);
            input.splice(to..to, piece.iter().copied().cycle().take(n * times));
        }
        5 => {
            let at = rng.below(len + 1);
            input.splice(at..at, rng.pick(TOKENS).iter().copied());
        }
        6 if len > 0 && !others.is_empty() => {
            let other = rng.pick(others);
            if !other.is_empty() {
                let from = rng.below(other.len());
                let at = rng.below(len);
                input.truncate(at);
                input.extend_from_slice(&other[from..]);
            }
        }
        7 if len > 0 => {
            let token = rng.pick(TOKENS);
            let at = rng.below(len);
            let end = (at + token.len()).min(len);
            input.splice(at..end, token.iter().copied());
        }
        8 if len > 0 => {
            let at = rng.below(len);
            input.truncate(at);
        }
        _ => {}
    }
    input.truncate(max_len);
}

fn corpus(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("no corpus at '{}': {e}", dir.display()))
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("cannot list '{}': {e}", dir.display()));
    files.sort();
    let corpus: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            (f, bytes)
        })
        .collect();
    assert!(!corpus.is_empty(), "empty corpus '{}'", dir.display());
    corpus
}

/// Runs one input with the allocation bound armed; on a panic saves it and fails.
fn run_one(name: &'static str, target: smtool::fuzzing::Target, input: &[u8], what: &str) {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz");
    if std::env::var_os("SMTOOL_FUZZ_SAVE").is_some() {
        std::fs::create_dir_all(&scratch).expect("scratch directory");
        std::fs::write(scratch.join(format!("{name}.input")), input).expect("saving the input");
    }
    let outcome = bounded_alloc::bounded(name, || std::panic::catch_unwind(|| target(input)));
    if outcome.is_err() {
        std::fs::create_dir_all(&scratch).expect("scratch directory");
        let saved = scratch.join(format!("{name}.crash"));
        std::fs::write(&saved, input).expect("saving the crash");
        panic!(
            "fuzz target {name} panicked on {what} (saved as '{}', {} bytes)",
            saved.display(),
            input.len()
        );
    }
}

fn fuzz(name: &'static str) {
    let target = smtool::fuzzing::target(name).expect("a known target");
    let corpus = corpus(name);
    for (path, bytes) in &corpus {
        run_one(name, target, bytes, &path.display().to_string());
    }
    let mutations = std::env::var("SMTOOL_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MUTATIONS);
    let inputs: Vec<Vec<u8>> = corpus.into_iter().map(|(_, b)| b).collect();
    let max_len = 2 * inputs.iter().map(Vec::len).max().unwrap_or(0) + 4096;
    let mut rng = Rng::new(name);
    for i in 0..mutations {
        let mut input = inputs[i % inputs.len()].clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut rng, &mut input, &inputs, max_len);
        }
        run_one(name, target, &input, &format!("mutation {i}"));
    }
}

/// Each target of `smtool::fuzzing` has a test here and a libFuzzer binary in `fuzz/`, and
/// `fuzz/` has no other.
#[test]
fn every_target_has_a_test_and_a_fuzz_binary() {
    let source = include_str!("fuzz.rs");
    let manifest = include_str!("../fuzz/Cargo.toml");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut binaries: Vec<String> = std::fs::read_dir(&dir)
        .expect("fuzz/fuzz_targets")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    binaries.sort();
    let mut names: Vec<String> = smtool::fuzzing::TARGETS
        .iter()
        .map(|(name, _)| format!("{name}.rs"))
        .collect();
    names.sort();
    assert_eq!(
        binaries, names,
        "fuzz/fuzz_targets/ and smtool::fuzzing::TARGETS differ"
    );
    for (name, _) in smtool::fuzzing::TARGETS {
        assert!(
            source.contains(&format!("fn {name}() {{")),
            "no test runs the fuzz target {name}"
        );
        assert!(
            manifest.contains(&format!(
                "name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\""
            )),
            "fuzz/Cargo.toml has no binary for {name}"
        );
        let binary = std::fs::read_to_string(dir.join(format!("{name}.rs"))).expect("the binary");
        assert!(
            binary.contains(&format!("target!({name})")),
            "fuzz/fuzz_targets/{name}.rs does not run {name}"
        );
    }
}

#[test]
fn rest_predict() {
    fuzz("rest_predict");
}

#[test]
fn rest_examples() {
    fuzz("rest_examples");
}

#[test]
fn grpc_predict() {
    fuzz("grpc_predict");
}

#[test]
fn grpc_input() {
    fuzz("grpc_input");
}

#[test]
fn saved_model_pb() {
    fuzz("saved_model_pb");
}

#[test]
fn saved_model_pbtxt() {
    fuzz("saved_model_pbtxt");
}

#[test]
fn variables_index() {
    fuzz("variables_index");
}

#[test]
fn tfrecord() {
    fuzz("tfrecord");
}
