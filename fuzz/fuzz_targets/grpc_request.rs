//! gRPC request decoding and the daemon's request checks (`vouch::daemon::requests`): any
//! bytes, read as the body of Enroll, Verify, Identify or Challenge, either fail to decode or
//! are checked without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use vouch::daemon::proto as pb;
use vouch::daemon::requests;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the method, as the request's path would.
    let Some((&method, body)) = data.split_first() else {
        return;
    };
    match method % 4 {
        0 => {
            if let Ok(m) = pb::EnrollRequest::decode(body) {
                let _ = requests::enroll_input(&m);
            }
        }
        1 => {
            if let Ok(m) = pb::VerifyRequest::decode(body) {
                let _ = requests::verify_input(&m);
            }
        }
        2 => {
            if let Ok(m) = pb::IdentifyRequest::decode(body) {
                let _ = requests::frames(&m.frames);
            }
        }
        _ => {
            if let Ok(m) = pb::ChallengeRequest::decode(body) {
                let _ = requests::transaction(m.transaction.as_ref());
            }
        }
    }
});
