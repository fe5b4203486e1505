#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: eagate_fuzzing::cursor_query::Input<'_>| eagate_fuzzing::cursor_query::check(input));
