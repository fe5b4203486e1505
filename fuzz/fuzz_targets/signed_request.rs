#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: eagate_fuzzing::signed_request::Input<'_>| eagate_fuzzing::signed_request::check(input));
