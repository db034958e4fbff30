//! `POST /sync/v1/pull` with arbitrary bytes as the body, through the real router (auth
//! middleware, JSON extraction, cursor decoding and checking, limits, storage).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod server;

fuzz_target!(|data: &[u8]| {
    server::post("/sync/v1/pull", data);
});
