//! Arbitrary bytes as a document of schemas/sample.json (the first byte picks the collection):
//! the validation a local write and the server's push both run.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tandem_protocol::Schema;

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::from_json(include_str!("../../schemas/sample.json")).expect("the sample schema")
    })
}

fuzz_target!(|data: &[u8]| {
    let schema = schema();
    let (collection, body) = tandem_core::fuzzing::split_collection(schema, data);
    tandem_core::fuzzing::document(schema, collection, body);
});
