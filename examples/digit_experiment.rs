//! Scratch experiment.
use vouch::voice::digits::*;
use vouch::voice::mfcc::MfccConfig;
use vouch::voice::{Audio, AudioLimits};
fn main() {
    let dir = std::path::Path::new("../shared/data/fsdd/recordings");
    let limits = AudioLimits { min_seconds: 0.1, ..AudioLimits::default() };
    let speakers = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"];
    let mut audio = std::collections::HashMap::new();
    for s in speakers { for d in 0..10 { for t in 0..20 {
        audio.insert((s, d, t), Audio::open(&dir.join(format!("{d}_{s}_{t}.wav")), &limits).unwrap());
    }}}
    let base = DigitFeatures::default();
    let configs = vec![("none", base.clone())];
    for (name, cfg) in configs {
        let fe = DigitFrontEnd::with(cfg).unwrap();
        let mut right = 0; let mut total = 0; let mut topk = [0usize; 4]; let mut wrong = [0usize; 4];
        for s in speakers {
            let mut tpl = DigitTemplates::new();
            for d in 0..10u8 { for t in 5..10 { tpl.add(d, &fe.single(&audio[&(s, d as usize, t)]).unwrap()).unwrap(); } }
            for d in 0..10u8 { for t in 10..20 {
                let r = tpl.recognise(&fe.single(&audio[&(s, d as usize, t)]).unwrap()).unwrap();
                total += 1; if r.digit == d { right += 1; }
                for k in 1..4 { if r.rank_of(d) <= k { topk[k] += 1; } for w in 0..10u8 { if w != d && r.rank_of(w) <= k { wrong[k] += 1; } } }
            }}
        }
        for k in 1..4 { println!("top-{k}: truth within {:.2} %, a wrong digit within {:.2} % of (token, wrong digit) pairs", 100.0 * topk[k] as f64 / total as f64, 100.0 * wrong[k] as f64 / (9 * total) as f64); }
        println!("{name:<14} isolated-token accuracy {:.1} % ({right}/{total})", 100.0 * right as f64 / total as f64);
    }
}
