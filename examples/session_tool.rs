//! Session identity command-line helper.
//!
//! ```text
//! cargo run --example session_tool -- id <seed-hex>              # Session ID of a 16- or 32-byte seed
//! cargo run --example session_tool -- mnemonic <seed-hex>        # recovery phrase of a seed
//! cargo run --example session_tool -- seed <word> <word> …       # seed hex of a phrase
//! cargo run --example session_tool -- verify-record <session-id> <record-hex>
//! ```
//!
//! Errors go to stderr with exit code 2.

use session_ratchet::secret::{Ed25519Seed, RecoverySeed};
use session_ratchet::session_v2::account_keys::verify_record;
use session_ratchet::session_v2::identity::{Identity, SessionId};
use session_ratchet::session_v2::mnemonic;
use std::io::Write;
use std::process::ExitCode;

fn usage() -> String {
    "usage: session_tool id <seed-hex> | mnemonic <seed-hex> | seed <phrase…> | verify-record <session-id> <record-hex>"
        .to_string()
}

fn decode_hex(s: &str, what: &str) -> Result<Vec<u8>, String> {
    hex::decode(s.trim()).map_err(|e| format!("{what} is not hex: {e}"))
}

fn run(args: &[String]) -> Result<String, String> {
    let (cmd, rest) = args.split_first().ok_or_else(usage)?;
    match (cmd.as_str(), rest) {
        ("id", [seed]) => {
            let seed = decode_hex(seed, "seed")?;
            let id = Identity::from_seed_bytes(&seed)
                .ok_or_else(|| format!("a seed is 16 or 32 bytes, got {}", seed.len()))?;
            Ok(id.session_id().to_string())
        }
        ("mnemonic", [seed]) => {
            let seed = decode_hex(seed, "seed")?;
            let phrase = match <[u8; 16]>::try_from(seed.as_slice()) {
                Ok(b) => mnemonic::encode_recovery_seed(&RecoverySeed::from_bytes(b)),
                Err(_) => {
                    let b = <[u8; 32]>::try_from(seed.as_slice())
                        .map_err(|_| format!("a seed is 16 or 32 bytes, got {}", seed.len()))?;
                    mnemonic::encode_full_seed(&Ed25519Seed::from_bytes(b))
                }
            }
            .map_err(|e| e.to_string())?;
            Ok(phrase.as_str().to_string())
        }
        ("seed", words) if !words.is_empty() => {
            let phrase = words.join(" ");
            let seed =
                mnemonic::decode(&phrase).map_err(|e| format!("invalid recovery phrase: {e}"))?;
            Ok(match seed {
                mnemonic::DecodedSeed::Recovery(s) => hex::encode(*s.export()),
                mnemonic::DecodedSeed::Full(s) => hex::encode(*s.export()),
            })
        }
        ("verify-record", [sid, record]) => {
            let sid =
                SessionId::from_hex(sid.trim()).map_err(|e| format!("invalid Session ID: {e}"))?;
            let record = decode_hex(record, "record")?;
            let keys = verify_record(&sid, &record).map_err(|e| format!("invalid record: {e}"))?;
            Ok(format!(
                "valid\nX25519 {}\nML-KEM-768 {}",
                hex::encode(keys.x25519.as_bytes()),
                hex::encode(keys.mlkem.as_bytes())
            ))
        }
        _ => Err(usage()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            // A closed pipe (e.g. `| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
