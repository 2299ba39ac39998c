//! Fuzzes `Config::parse_response` with a fuzzer-chosen status, content type,
//! retry-after, date and body. The oracle, shared with `tests/parser_props.rs`,
//! asserts more than "no panic": every error prints one short line without
//! control characters or the client secret, every token is header-safe and
//! its lifetime clamped, every status keeps its meaning.
//!
//! ```sh
//! cargo +nightly fuzz run parse_response -- -max_total_time=1800 -dict=fuzz/parse_response.dict
//! ```
#![no_main]

#[path = "../../tests/support/parser_oracle.rs"]
mod oracle;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    oracle::check(data);
});
