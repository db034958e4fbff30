//! Arbitrary bytes as a schema document: `Schema::from_json`, then the engine's install of a
//! schema that parses (migrated in-memory store, expression indexes, planner statistics).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tandem_core::fuzzing::schema_document(data);
});
