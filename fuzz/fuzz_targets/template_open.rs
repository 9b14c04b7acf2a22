//! Template envelope bytes → header parse and authenticated decryption: any input is a typed
//! error (format, authentication, unknown key) or a template, never a panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vouch::template::format::decode_header;
use vouch::template::{Keyring, open};

fn keys() -> &'static Keyring {
    static KEYS: OnceLock<Keyring> = OnceLock::new();
    KEYS.get_or_init(|| Keyring::generate("fuzz").expect("a keyring"))
}

fuzz_target!(|data: &[u8]| {
    let _ = decode_header(data);
    let _ = open(data, "subject", keys());
});
