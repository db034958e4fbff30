//! `POST /sync/v1/push` with arbitrary bytes as the body, through the real router (auth
//! middleware, body limit, JSON extraction, validation against the sample schema, storage).
#![no_main]

use libfuzzer_sys::fuzz_target;

mod server;

fuzz_target!(|data: &[u8]| {
    server::post("/sync/v1/push", data);
});
