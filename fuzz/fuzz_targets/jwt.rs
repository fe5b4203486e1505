#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: eagate_fuzzing::jwt::Input<'_>| eagate_fuzzing::jwt::check(input));
