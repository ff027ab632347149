#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| hydrant_fuzz::targets::kinesis_requests(data));
