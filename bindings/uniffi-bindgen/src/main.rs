//! `cargo run -p uniffi-bindgen -- generate --library <cdylib> --language <lang> --out-dir <dir>`
//! (see `scripts/generate-bindings.sh`). Pinned here so the generator always matches the runtime.
fn main() {
    uniffi::uniffi_bindgen_main()
}
