//! Config and policy TOML → validated settings: a typed error or valid settings, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch::Config;
use vouch::policy::Policy;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Config::from_toml(text);
        let _ = Policy::parse(text);
    }
});
