//! Template crypto: seal, open and compare one template; a 1:N scan (open + cosine) over
//! 100 000 sealed templates. Run: `cargo bench --bench templates`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vouch::template::{Kek, Keyring, Modality, Template, TemplateHeader, open, seal};

fn template(seed: u32) -> Template {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let values: Vec<f32> = (0..128)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x % 2000) as f32 / 1000.0 - 1.0
        })
        .collect();
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    let header = TemplateHeader {
        modality: Modality::Face,
        model_id: "mobilefacenet@b7120c095d60".into(),
        model_sha256: [0; 32],
        dimension: 128,
        samples: 3,
        quality: 0.9,
        created_unix: 0,
    };
    Template::new(header, values.iter().map(|v| v / norm).collect()).unwrap()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn bench(c: &mut Criterion) {
    let keys = Keyring::single("k1", Kek::from_hex(&"42".repeat(32)).unwrap()).unwrap();
    let t = template(1);
    let probe = template(2);
    let blob = seal(&t, "subject-1", &keys).unwrap();
    let mut group = c.benchmark_group("template");
    group.bench_function("seal", |b| {
        b.iter(|| seal(black_box(&t), "subject-1", &keys).unwrap())
    });
    group.bench_function("open", |b| {
        b.iter(|| open(black_box(&blob), "subject-1", &keys).unwrap())
    });
    group.bench_function("open_and_compare", |b| {
        b.iter(|| {
            let opened = open(black_box(&blob), "subject-1", &keys).unwrap();
            dot(opened.values(), probe.values())
        })
    });
    group.finish();

    let n = 100_000u32;
    let gallery: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let subject = format!("s{i}");
            let blob = seal(&template(i + 10), &subject, &keys).unwrap();
            (subject, blob)
        })
        .collect();
    let mut group = c.benchmark_group("identify");
    group.sample_size(10);
    group.bench_function("scan_100k_open_and_cosine", |b| {
        b.iter(|| {
            let mut best = (f32::MIN, 0usize);
            for (i, (subject, blob)) in gallery.iter().enumerate() {
                let opened = open(blob, subject, &keys).unwrap();
                let score = dot(opened.values(), probe.values());
                if score > best.0 {
                    best = (score, i);
                }
            }
            assert!(best.0 > 0.0);
            best
        })
    });
    group.finish();
}

/// The in-memory 1:N gallery (`vouch::gallery`): a million random unit vectors of 128
/// dimensions, one subject each, and a probe made near one of them; the two-pass scan and a
/// float scan of every template, each checked to find that subject first.
fn bench_gallery(c: &mut Criterion) {
    use vouch::gallery::Gallery;
    let dim = 128;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut unit = || -> Vec<f32> {
        let v: Vec<f32> = (0..dim)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    };
    let mut gallery = Gallery::new("bench@0", dim).unwrap();
    let mut target = Vec::new();
    for i in 0..1_000_000 {
        let v = unit();
        if i == 777_777 {
            target = v.clone();
        }
        gallery.push(&format!("s{i}"), &v).unwrap();
    }
    let noise = unit();
    let probe: Vec<f32> = target
        .iter()
        .zip(&noise)
        .map(|(t, n)| 0.8 * t + 0.6 * n)
        .collect();
    let mut group = c.benchmark_group("gallery_1m");
    group.sample_size(10);
    group.bench_function("two_pass_top1", |b| {
        b.iter(|| {
            let top = gallery.top(black_box(&probe), 1).unwrap();
            assert_eq!(top[0].subject, "s777777");
            top
        })
    });
    group.bench_function("float_top1", |b| {
        b.iter(|| {
            let top = gallery.top_exhaustive(black_box(&probe), 1).unwrap();
            assert_eq!(top[0].subject, "s777777");
            top
        })
    });
    group.finish();
}

criterion_group!(benches, bench, bench_gallery);
criterion_main!(benches);
