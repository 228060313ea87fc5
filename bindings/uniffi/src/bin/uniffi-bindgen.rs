//! `uniffi-bindgen` pinned to this crate's UniFFI version: generates the
//! Kotlin and Swift sources from the built library, e.g.
//! `cargo run -p session-ratchet-uniffi --bin uniffi-bindgen -- generate
//! --library target/release/libsession_ratchet_uniffi.so --language kotlin
//! --out-dir bindings/uniffi/generated/kotlin --no-format`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
