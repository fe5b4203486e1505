#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: eagate_fuzzing::json_bodies::Input<'_>| eagate_fuzzing::json_bodies::check(input));
