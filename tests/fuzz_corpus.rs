//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/*`) as an
//! ordinary test, through the same checks the libFuzzer targets run
//! (`fuzz/logic.rs`), and checks the seed corpora are up to date.
//!
//! Regenerate the seeds after a format change with
//! `FUZZ_WRITE_CORPUS=1 cargo test --test fuzz_corpus`.
#![cfg(all(feature = "std", feature = "session-v2"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../fuzz/logic.rs"]
mod logic;

use std::fs;
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
        .join(target)
}

fn seed_name(i: usize) -> String {
    format!("seed-{i:03}")
}

#[test]
fn seed_corpora_are_committed_and_current() {
    let write = std::env::var_os("FUZZ_WRITE_CORPUS").is_some();
    let seeds = logic::seed_corpus();
    assert_eq!(
        seeds.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        logic::TARGETS
    );
    for (target, inputs) in seeds {
        let dir = corpus_dir(target);
        if write {
            fs::create_dir_all(&dir).unwrap();
        }
        for (i, input) in inputs.iter().enumerate() {
            let path = dir.join(seed_name(i));
            if write {
                fs::write(&path, input).unwrap();
            } else {
                let on_disk = fs::read(&path).unwrap_or_else(|e| {
                    panic!("{}: {e} (FUZZ_WRITE_CORPUS=1 regenerates)", path.display())
                });
                assert!(
                    &on_disk == input,
                    "{} is stale (FUZZ_WRITE_CORPUS=1 regenerates)",
                    path.display()
                );
            }
        }
    }
}

fn replay(target: &str) {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    for f in files {
        let data = fs::read(&f).unwrap();
        eprintln!("{target}: {}", f.display());
        logic::run(target, &data);
    }
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*
    };
}

replay_tests!(
    prekey_bundle,
    prekey_message,
    device_certificate,
    ratchet_decrypt,
    stored_session,
    bencode,
    dm_receive,
    device_group,
    link_request,
    interaction,
    device_list,
    prekey_record,
    stored_prekeys,
    envelope,
    device_link,
    sessions_decrypt,
    multidevice,
);

/// The fuzzing-only AEAD weakening (`src/aead.rs`) is absent from normal
/// builds: a message whose tags are all zero never decrypts.
#[test]
fn zero_tag_messages_are_rejected_in_normal_builds() {
    for input in logic::seed_corpus()
        .into_iter()
        .find(|(t, _)| *t == "ratchet_decrypt")
        .unwrap()
        .1
    {
        let n = input.len();
        if input[n - 16..].iter().all(|&b| b == 0) {
            assert!(
                logic::decrypt_is_rejected(&input),
                "zero-tag message accepted"
            );
        }
    }
}

/// The same for envelopes: the seed whose slot for the fixed device carries
/// an all-zero tag does not open in normal builds.
#[test]
fn zero_tag_envelope_is_rejected_in_normal_builds() {
    let seeds = logic::seed_corpus()
        .into_iter()
        .find(|(t, _)| *t == "envelope")
        .unwrap()
        .1;
    assert!(logic::envelope_opens(&seeds[0]));
    assert!(!logic::envelope_opens(&seeds[1]), "zero-tag slot accepted");
}
