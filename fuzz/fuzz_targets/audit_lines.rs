//! Audit log lines → chain verification: any input is a summary or a typed error naming the
//! line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch::audit::verify_lines;

fuzz_target!(|data: &[u8]| {
    let _ = verify_lines(data);
});
