//! Arbitrary bytes as a server answer (the first byte picks the kind: auth session, push answer,
//! pull page, error body, event stream), parsed as the client parses it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tandem_core::fuzzing::server_answer(data);
});
