//! Writes every published test vector file to `test-vectors/<layer>-new.json`.
//!
//! `cargo run --example gen_vectors`
//!
//! Output is deterministic. Review the diff against `test-vectors/<layer>.json`
//! and promote a file by renaming it; `cargo test` fails while any committed
//! file differs from what the generator produces.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[path = "../tests/vectors/mod.rs"]
mod vectors;

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("test-vectors");
    std::fs::create_dir_all(&dir)?;
    if std::env::args().any(|a| a == "--write-stability-vector") {
        // Frozen vectors are written once and never replaced.
        let path = dir.join("stored-session-v1.json");
        if path.exists() {
            eprintln!("{} exists and is frozen; not overwriting", path.display());
            std::process::exit(2);
        }
        std::fs::write(
            &path,
            vectors::render(&vectors::ratchet::stability_vector()),
        )?;
        println!("{}: written (frozen from now on)", path.display());
        return Ok(());
    }
    for (stem, value) in vectors::all() {
        let path = dir.join(format!("{stem}-new.json"));
        std::fs::write(&path, vectors::render(&value))?;
        let n = value["vectors"].as_array().map_or(0, |a| a.len());
        println!("{}: {n} vectors", path.display());
    }
    Ok(())
}
