//! Receipt text → signature check and payload parse, as a payment backend runs it on whatever
//! a terminal forwards: a typed error or a receipt, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vouch::receipt::{parse_public_key, verify_receipt};

fuzz_target!(|data: &[u8]| {
    // The fixture's key, so the corpus seeded with the fixture receipt reaches the payload
    // parser past a valid signature.
    let pem = include_str!("../../fixtures/formats/receipt-v1.pub");
    let hex = pem
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<String>();
    let key = parse_public_key(hex.trim()).expect("the fixture key");
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = verify_receipt(text, &key);
    }
});
