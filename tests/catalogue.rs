//! The bad-input catalogue: one table of broken and hostile inputs across every entry point of
//! the library — images, audio, templates, keys, configuration, policies, calibrations,
//! receipts, audit logs and requests — each naming the exact [`ErrorKind`] it must produce.
//! Every case runs in isolation (a panic fails that case by name, not the table), and after the
//! whole table the enrolled subject must still verify: bad input loses nothing.
//!
//! The request-level cases are also sent to a running daemon (served in-process, see
//! `bad_requests_leave_a_running_daemon_serving`), where each must come back with its gRPC code
//! and the same kind in the `vouch-error-kind` trailer.

use std::io::{Cursor, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tonic::Code;
use vouch::authenticator::{
    Authenticator, EnrollRequest, IdentifyRequest, Outcome, TransactionContext, VerifyRequest,
    VoiceResponse,
};
use vouch::config::LimitsConfig;
use vouch::daemon::proto as pb;
use vouch::face::FaceImage;
use vouch::policy::{Policy, Transaction};
use vouch::receipt::{ReceiptSigner, parse_public_key, verify_receipt};
use vouch::score::Calibration;
use vouch::template::{Kek, KeyProvider, Keyring, Modality, Template, TemplateHeader};
use vouch::voice::{Audio, AudioLimits};
use vouch::{Config, ErrorKind, Result};

use crate::harness::{InProcess, face, tx};
use crate::util;

/// What a case needs beyond the fixtures in the checkout.
#[derive(Clone, Copy, PartialEq)]
enum Needs {
    /// Nothing: runs everywhere.
    Nothing,
    /// The real models, ONNX Runtime and the shared photos (skipped, said, without them).
    Models,
}

/// One catalogue entry: the input it feeds, the kind it must be refused with.
struct Case {
    name: &'static str,
    needs: Needs,
    expect: ErrorKind,
    run: fn(&Bench) -> Result<()>,
}

const fn case(
    name: &'static str,
    needs: Needs,
    expect: ErrorKind,
    run: fn(&Bench) -> Result<()>,
) -> Case {
    Case {
        name,
        needs,
        expect,
        run,
    }
}

/// Everything the cases feed on: good inputs to break, keys, a template, a receipt.
struct Bench {
    dir: tempfile::TempDir,
    jpeg: Vec<u8>,
    keys: Keyring,
    blob: Vec<u8>,
    receipt: String,
    receipt_key: String,
    audit: Vec<u8>,
    /// With the models: an authenticator whose store holds `alice` (face).
    auth: Option<Authenticator>,
    shared: Option<PathBuf>,
}

const SUBJECT: &str = "alice";
const MODEL: &str = "mobilefacenet@b7120c095d60";

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keyring::single("k1", Kek::from_hex(&"5a".repeat(32)).unwrap()).unwrap();
        let blob = vouch::template::seal(&template(MODEL), SUBJECT, &keys).unwrap();
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/formats");
        let read = |name: &str| std::fs::read_to_string(fixtures.join(name)).unwrap();
        let receipt_key = read("receipt-v1.pub")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<String>();
        let auth = util::engine().map(|_| authenticator(dir.path()));
        Bench {
            jpeg: jpeg(320, 240),
            keys,
            blob,
            receipt: read("receipt-v1.txt").trim().to_string(),
            receipt_key,
            audit: read("audit-v1.jsonl").into_bytes(),
            auth,
            shared: util::shared_dir(),
            dir,
        }
    }

    fn auth(&self) -> &Authenticator {
        self.auth
            .as_ref()
            .expect("a Models case runs only with the models")
    }

    fn photo(&self, name: &str) -> Vec<u8> {
        let shared = self.shared.as_ref().expect("the shared data");
        std::fs::read(shared.join("data/faces-deepface").join(name)).unwrap()
    }

    fn fsdd(&self, digit: u8, take: u32) -> Vec<u8> {
        let shared = self.shared.as_ref().expect("the shared data");
        std::fs::read(shared.join(format!("data/fsdd/recordings/{digit}_theo_{take}.wav"))).unwrap()
    }

    /// A file in the bench's folder with `text` and `mode`.
    fn file(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn verify(&self, frames: &[&[u8]], tx: &TransactionContext) -> Result<Outcome> {
        self.auth()
            .verify(&VerifyRequest {
                subject: SUBJECT,
                terminal: "till-1",
                transaction: tx,
                face_frames: frames,
                voice: None,
                active: None,
            })
            .map(|d| d.outcome)
    }
}

/// An authenticator of its own (store, keys, receipts and audit log in `dir`) with `alice`
/// enrolled from two deepface photos.
fn authenticator(dir: &Path) -> Authenticator {
    let mut config = util::engine().unwrap().config().clone().into_inner();
    config.store.sqlite = dir.join("templates.db");
    config.keys.file = dir.join("keys.toml");
    config.decisions.receipt_key = dir.join("receipt.key");
    config.decisions.audit_log = dir.join("audit.log");
    // The catalogue's refused verifications must not lock alice out.
    config.decisions.attempts.max_subject_failures = 1000;
    Keyring::generate("k1")
        .unwrap()
        .save(&config.keys.file)
        .unwrap();
    ReceiptSigner::generate(&config.decisions.receipt_key).unwrap();
    let vault = vouch::vault::TemplateVault::open(&config.store, &config.keys).unwrap();
    let engine = Arc::new(vouch::Engine::new(config.validate().unwrap()).unwrap());
    let auth = Authenticator::with_engine(engine, vault).unwrap();
    let shared = util::shared_dir().unwrap().join("data/faces-deepface");
    let photos = ["img2.jpg", "img6.jpg"].map(|p| std::fs::read(shared.join(p)).unwrap());
    let report = auth
        .enroll(&EnrollRequest {
            subject: SUBJECT,
            terminal: "till-1",
            face: &[&photos[0], &photos[1]],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(report.outcome, Outcome::Accept, "{report:?}");
    auth
}

/// A face template of `model` with a fixed vector.
pub fn template(model: &str) -> Template {
    let header = TemplateHeader {
        modality: Modality::Face,
        model_id: model.into(),
        model_sha256: [7; 32],
        dimension: 128,
        samples: 1,
        quality: 0.9,
        created_unix: 0,
    };
    Template::new(header, (0..128).map(|i| (i as f32 * 0.37).sin()).collect()).unwrap()
}

/// A gradient encoded by the library's own frame encoder (libjpeg-turbo).
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let rgb = (0..height)
        .flat_map(|y| {
            (0..width).flat_map(move |x| [(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
        })
        .collect();
    let image = FaceImage::from_rgb(width, height, rgb).unwrap();
    vouch::capture::encode_image(&image, vouch::capture::FrameEncoding::Jpeg { quality: 90 })
        .unwrap()
        .to_vec()
}

fn image(bytes: &[u8]) -> Result<()> {
    FaceImage::decode(bytes, &LimitsConfig::default()).map(drop)
}

fn audio(bytes: &[u8]) -> Result<()> {
    Audio::decode(bytes, &AudioLimits::default()).map(drop)
}

fn sine(seconds: f32, amplitude: f32) -> Vec<f32> {
    let n = (seconds * 16_000.0) as usize;
    (0..n)
        .map(|i| amplitude * (i as f32 * 2.0 * std::f32::consts::PI * 220.0 / 16_000.0).sin())
        .collect()
}

/// A WAV header for IEEE float samples, each given as raw bits.
fn wav_float(samples: &[f32]) -> Vec<u8> {
    let data_len = (samples.len() * 4) as u32;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&3u16.to_le_bytes()); // IEEE float
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&64_000u32.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&32u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

fn small_payment() -> TransactionContext {
    TransactionContext {
        id: "t-1".into(),
        nonce: "n-1".into(),
        transaction: Transaction::new(450, "EUR", Some("5411")).unwrap(),
    }
}

fn open_blob(blob: &[u8], subject: &str, keys: &dyn KeyProvider) -> Result<()> {
    vouch::template::open(blob, subject, keys).map(drop)
}

fn receipt_with(b: &Bench, edit: impl Fn(&str) -> String) -> Result<()> {
    verify_receipt(&edit(&b.receipt), &parse_public_key(&b.receipt_key)?).map(drop)
}

fn audit_with(b: &Bench, edit: impl Fn(Vec<&str>) -> Vec<String>) -> Result<()> {
    let text = String::from_utf8(b.audit.clone()).unwrap();
    let lines = edit(text.lines().collect());
    vouch::audit::verify_lines(Cursor::new(lines.join("\n") + "\n")).map(drop)
}

fn config(text: &str) -> Result<()> {
    Config::from_toml(text)?.validate().map(drop)
}

fn daemon_config(text: &str) -> Result<()> {
    vouch::daemon::DaemonFile::parse(text)?.validate()
}

/// The table. Kinds are what a caller branches on, so each is asserted exactly.
fn catalogue() -> Vec<Case> {
    use ErrorKind::*;
    use Needs::*;
    vec![
        // Images.
        case("image: no bytes", Nothing, ImageDecode, |_| image(&[])),
        case(
            "image: JPEG cut after its header",
            Nothing,
            ImageDecode,
            |b| image(&b.jpeg[..b.jpeg.len().min(200)]),
        ),
        case("image: JPEG cut in half", Nothing, ImageDecode, |b| {
            image(&b.jpeg[..b.jpeg.len() / 2])
        }),
        case(
            "image: JPEG start marker then noise",
            Nothing,
            ImageDecode,
            |_| {
                let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
                bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
                image(&bytes)
            },
        ),
        case(
            "image: PNG with a corrupt chunk CRC",
            Nothing,
            ImageDecode,
            |_| {
                let mut png = util::png(64, 64, |x, y| [x as u8, y as u8, 0]);
                let ihdr_crc = 8 + 8 + 13;
                png[ihdr_crc] ^= 0xFF;
                image(&png)
            },
        ),
        case(
            "image: PNG declaring 100000 x 100000",
            Nothing,
            ImageTooLarge,
            |_| image(&util::png_claiming(100_000, 100_000)),
        ),
        case("image: PNG declaring 0 x 0", Nothing, ImageDecode, |_| {
            image(&util::png_claiming(0, 0))
        }),
        case(
            "image: more bytes than max_image_bytes",
            Nothing,
            ImageTooLarge,
            |b| {
                let limits = LimitsConfig {
                    max_image_bytes: 1024,
                    ..LimitsConfig::default()
                };
                FaceImage::decode(&b.jpeg, &limits).map(drop)
            },
        ),
        case("image: GIF", Nothing, ImageDecode, |_| {
            image(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
        }),
        case("image: text", Nothing, ImageDecode, |_| {
            image(b"<html>not a photo</html>")
        }),
        case(
            "image: WebP named .jpg (deepface img47)",
            Models,
            ImageDecode,
            |b| image(&b.photo("img47.jpg")),
        ),
        case(
            "image: 12 x 12, too small for a face",
            Models,
            ImageTooSmall,
            |b| {
                b.auth()
                    .engine()
                    .face_sample(&util::png(12, 12, |_, _| [128, 128, 128]))
                    .map(drop)
            },
        ),
        case("image: a grey frame, no face", Models, NoFace, |b| {
            b.auth()
                .engine()
                .face_sample(&util::png(640, 480, |_, _| [128, 128, 128]))
                .map(drop)
        }),
        // Audio.
        case("audio: no bytes", Nothing, AudioDecode, |_| audio(&[])),
        case("audio: a RIFF header only", Nothing, AudioDecode, |_| {
            audio(&util::wav_16k(&sine(1.0, 0.3))[..12])
        }),
        case(
            "audio: WAV with zero channels",
            Nothing,
            AudioDecode,
            |_| {
                let mut wav = util::wav_16k(&sine(1.0, 0.3));
                wav[22] = 0;
                audio(&wav)
            },
        ),
        case("audio: WAV at 0 Hz", Nothing, AudioDecode, |_| {
            let mut wav = util::wav_16k(&sine(1.0, 0.3));
            wav[24..28].copy_from_slice(&0u32.to_le_bytes());
            audio(&wav)
        }),
        case("audio: float WAV holding NaN", Nothing, AudioDecode, |_| {
            let mut samples = sine(1.0, 0.3);
            samples[4000] = f32::NAN;
            audio(&wav_float(&samples))
        }),
        case(
            "audio: float WAV holding infinity",
            Nothing,
            AudioDecode,
            |_| {
                let mut samples = sine(1.0, 0.3);
                samples[100] = f32::INFINITY;
                audio(&wav_float(&samples))
            },
        ),
        case(
            "audio: 2 s of digital silence",
            Nothing,
            AudioSilent,
            |_| audio(&util::wav_16k(&vec![0.0; 32_000])),
        ),
        case(
            "audio: a square wave at full scale",
            Nothing,
            AudioClipped,
            |_| {
                let square: Vec<f32> = sine(2.0, 1.0).iter().map(|s| s.signum()).collect();
                audio(&util::wav_16k(&square))
            },
        ),
        case("audio: 0.05 s", Nothing, AudioTooShort, |_| {
            audio(&util::wav_16k(&sine(0.05, 0.3)))
        }),
        case(
            "audio: a header declaring 10 minutes",
            Nothing,
            AudioTooLong,
            |_| audio(&util::wav_16k(&sine(600.0, 0.3))),
        ),
        case(
            "audio: more bytes than max_bytes",
            Nothing,
            AudioTooLong,
            |_| {
                let limits = AudioLimits {
                    max_bytes: 1000,
                    ..AudioLimits::default()
                };
                Audio::decode(&util::wav_16k(&sine(1.0, 0.3)), &limits).map(drop)
            },
        ),
        case("audio: MP3 frame header", Nothing, AudioDecode, |_| {
            let mut mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
            mp3.extend_from_slice(&[0xFF, 0xFB, 0x90, 0x64]);
            mp3.resize(4096, 0x55);
            audio(&mp3)
        }),
        case(
            "audio: FLAC marker then noise",
            Nothing,
            AudioDecode,
            |_| {
                let mut flac = b"fLaC".to_vec();
                flac.extend((0..2048u32).map(|i| (i.wrapping_mul(40_503) >> 7) as u8));
                audio(&flac)
            },
        ),
        case(
            "audio: WAV with a LIST chunk claiming 4 GB",
            Nothing,
            AudioDecode,
            |_| {
                let wav = util::wav_16k(&sine(1.0, 0.3));
                let data_at = 12 + 8 + 16;
                let mut lying = wav[..data_at].to_vec();
                lying.extend_from_slice(b"LIST");
                lying.extend_from_slice(&u32::MAX.to_le_bytes());
                lying.extend_from_slice(b"INFO");
                lying.extend_from_slice(&wav[data_at..]);
                audio(&lying)
            },
        ),
        case(
            "audio: FLAC whose picture block claims 2 GB (found by fuzzing)",
            Nothing,
            AudioDecode,
            |_| {
                let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("fixtures/fuzz/audio_decode/flac-picture-2gb");
                audio(&std::fs::read(fixture).unwrap())
            },
        ),
        case(
            "audio: LibriSpeech FLAC cut after 1 KiB",
            Models,
            AudioDecode,
            |b| {
                let shared = b.shared.as_ref().unwrap();
                let flac = std::fs::read(
                    shared.join("data/librispeech/test-other/1688/1688-142285-0000.flac"),
                )
                .unwrap();
                audio(&flac[..1024])
            },
        ),
        // Templates.
        case("template: no bytes", Nothing, TemplateFormat, |b| {
            open_blob(&[], SUBJECT, &b.keys)
        }),
        case("template: cut in half", Nothing, TemplateFormat, |b| {
            open_blob(&b.blob[..b.blob.len() / 2], SUBJECT, &b.keys)
        }),
        case(
            "template: unknown format version",
            Nothing,
            TemplateFormat,
            |b| {
                let mut blob = b.blob.clone();
                let at = blob.iter().position(|&x| x == 1).unwrap();
                blob[at] = 99;
                open_blob(&blob, SUBJECT, &b.keys)
            },
        ),
        case(
            "template: one ciphertext bit flipped",
            Nothing,
            TemplateAuth,
            |b| {
                let mut blob = b.blob.clone();
                let last = blob.len() - 20;
                blob[last] ^= 0x01;
                open_blob(&blob, SUBJECT, &b.keys)
            },
        ),
        case(
            "template: moved to another subject",
            Nothing,
            TemplateAuth,
            |b| open_blob(&b.blob, "mallory", &b.keys),
        ),
        case(
            "template: the right key id, another key",
            Nothing,
            TemplateAuth,
            |b| {
                let other =
                    Keyring::single("k1", Kek::from_hex(&"a5".repeat(32)).unwrap()).unwrap();
                open_blob(&b.blob, SUBJECT, &other)
            },
        ),
        case(
            "template: sealed under a key not in the ring",
            Nothing,
            Key,
            |b| {
                let other =
                    Keyring::single("k9", Kek::from_hex(&"a5".repeat(32)).unwrap()).unwrap();
                open_blob(&b.blob, SUBJECT, &other)
            },
        ),
        case(
            "template: a vector holding NaN",
            Nothing,
            InvalidInput,
            |_| {
                let mut values = vec![0.1; 128];
                values[3] = f32::NAN;
                Template::new(template(MODEL).header().clone(), values).map(drop)
            },
        ),
        case("template: an empty vector", Nothing, InvalidInput, |_| {
            Template::new(template(MODEL).header().clone(), Vec::new()).map(drop)
        }),
        case(
            "template: made by another model",
            Models,
            TemplateModelMismatch,
            |b| {
                let vault = b.auth().vault();
                vault.enroll(
                    "bob",
                    &template("arcface@000000000000"),
                    vouch::vault::Protection::Renewable,
                )?;
                vault.load("bob", Modality::Face, MODEL).map(drop)
            },
        ),
        // Keys.
        case("keys: no key file", Nothing, Key, |b| {
            Keyring::load(&b.dir.path().join("absent-keys.toml")).map(drop)
        }),
        case("keys: key file readable by others", Nothing, Key, |b| {
            let path = b.dir.path().join("open-keys.toml");
            Keyring::generate("k1").unwrap().save(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            Keyring::load(&path).map(drop)
        }),
        case("keys: key file that is not TOML", Nothing, Key, |b| {
            Keyring::load(&b.file("garbled-keys.toml", "[[[ not toml", 0o600)).map(drop)
        }),
        case("keys: a key of 31 bytes", Nothing, Key, |b| {
            let text = format!("current = \"k1\"\n[keys]\nk1 = \"{}\"\n", "5a".repeat(31));
            Keyring::load(&b.file("short-keys.toml", &text, 0o600)).map(drop)
        }),
        case("keys: hex that is not hex", Nothing, Key, |_| {
            Kek::from_hex(&"zz".repeat(32)).map(drop)
        }),
        case("keys: the key variable unset", Nothing, Key, |_| {
            Keyring::from_env("VOUCH_CATALOGUE_UNSET_VARIABLE").map(drop)
        }),
        case(
            "keys: receipt key file readable by others",
            Nothing,
            Key,
            |b| {
                let path = b.dir.path().join("open-receipt.key");
                ReceiptSigner::generate(&path).unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
                ReceiptSigner::load(&path).map(drop)
            },
        ),
        case("keys: receipt key file of garbage", Nothing, Key, |b| {
            ReceiptSigner::load(&b.file("garbage-receipt.key", "hello", 0o600)).map(drop)
        }),
        // Configuration, policy, calibration.
        case("config: not TOML", Nothing, Config, |_| {
            config("[limits\nmax = ")
        }),
        case("config: an unknown field", Nothing, Config, |_| {
            config("[limits]\nmax_image_byte = 10\n")
        }),
        case(
            "config: a string where a number goes",
            Nothing,
            Config,
            |_| config("[limits]\nmax_image_bytes = \"big\"\n"),
        ),
        case("config: a zero image limit", Nothing, Config, |_| {
            config("[limits]\nmax_image_bytes = 0\n")
        }),
        case("config: a negative audio length", Nothing, Config, |_| {
            config("[voice.audio]\nmax_seconds = -1.0\n")
        }),
        case(
            "daemon config: TCP without a client CA",
            Nothing,
            Config,
            |_| {
                daemon_config(
                    "[daemon.tcp]\nlisten = \"127.0.0.1:0\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n",
                )
            },
        ),
        case("daemon config: zero workers", Nothing, Config, |_| {
            daemon_config("[daemon]\nworkers = 0\n")
        }),
        case("policy: not TOML", Nothing, Config, |_| {
            Policy::parse("tier = [").map(drop)
        }),
        case("policy: an unknown factor", Nothing, Config, |_| {
            Policy::parse(
                "[[tier]]\nname = \"small\"\nmax_amount_minor = 5000\nfactors = [\"retina\"]\ntarget_fmr = 1e-3\n",
            )
            .map(drop)
        }),
        case("policy: no tiers", Nothing, Config, |_| {
            Policy::parse("").map(drop)
        }),
        case("calibration: not TOML", Nothing, Config, |_| {
            Calibration::parse("model = ").map(drop)
        }),
        // Receipts.
        case("receipt: empty", Nothing, ReceiptInvalid, |b| {
            receipt_with(b, |_| String::new())
        }),
        case(
            "receipt: one payload character changed",
            Nothing,
            ReceiptInvalid,
            |b| {
                receipt_with(b, |r| {
                    let at = r.len() / 2;
                    let mut bytes = r.as_bytes().to_vec();
                    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
                    String::from_utf8(bytes).unwrap()
                })
            },
        ),
        case(
            "receipt: of an unknown version",
            Nothing,
            ReceiptInvalid,
            |b| {
                receipt_with(b, |r| {
                    r.replacen("vouch-receipt.v1.", "vouch-receipt.v9.", 1)
                })
            },
        ),
        case(
            "receipt: verified with another key",
            Nothing,
            ReceiptInvalid,
            |b| {
                let other =
                    ReceiptSigner::generate(&b.dir.path().join("other-receipt.key")).unwrap();
                verify_receipt(&b.receipt, &other.verifying_key()).map(drop)
            },
        ),
        case("receipt: a public key of 31 bytes", Nothing, Key, |_| {
            parse_public_key(&"ab".repeat(31)).map(drop)
        }),
        // Audit logs.
        case("audit: a record edited", Nothing, AuditChain, |b| {
            audit_with(b, |lines| {
                lines
                    .iter()
                    .map(|l| l.replacen("\"outcome\":\"accept\"", "\"outcome\":\"reject\"", 1))
                    .collect()
            })
        }),
        case("audit: a record removed", Nothing, AuditChain, |b| {
            audit_with(b, |lines| {
                let mut kept: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                kept.remove(1);
                kept
            })
        }),
        case("audit: two records swapped", Nothing, AuditChain, |b| {
            audit_with(b, |lines| {
                let mut kept: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                kept.swap(0, 1);
                kept
            })
        }),
        case("audit: a line that is not JSON", Nothing, AuditChain, |b| {
            audit_with(b, |lines| {
                let mut kept: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
                kept.push("{\"seq\": 4, garbage".into());
                kept
            })
        }),
        // Requests (the library API; the daemon's are below).
        case(
            "transaction: currency \"eur\"",
            Nothing,
            InvalidInput,
            |_| Transaction::new(100, "eur", None).map(drop),
        ),
        case(
            "transaction: merchant category \"54A1\"",
            Nothing,
            InvalidInput,
            |_| Transaction::new(100, "EUR", Some("54A1")).map(drop),
        ),
        case("verify: an empty subject", Models, InvalidInput, |b| {
            let photo = b.photo("img7.jpg");
            b.auth()
                .verify(&VerifyRequest {
                    subject: "",
                    terminal: "till-1",
                    transaction: &small_payment(),
                    face_frames: &[&photo],
                    voice: None,
                    active: None,
                })
                .map(drop)
        }),
        case(
            "verify: a subject with a newline",
            Models,
            InvalidInput,
            |b| {
                let photo = b.photo("img7.jpg");
                b.auth()
                    .verify(&VerifyRequest {
                        subject: "alice\nforged log line",
                        terminal: "till-1",
                        transaction: &small_payment(),
                        face_frames: &[&photo],
                        voice: None,
                        active: None,
                    })
                    .map(drop)
            },
        ),
        case(
            "verify: a subject of 257 bytes",
            Models,
            InvalidInput,
            |b| {
                let photo = b.photo("img7.jpg");
                let subject = "a".repeat(257);
                b.auth()
                    .verify(&VerifyRequest {
                        subject: &subject,
                        terminal: "till-1",
                        transaction: &small_payment(),
                        face_frames: &[&photo],
                        voice: None,
                        active: None,
                    })
                    .map(drop)
            },
        ),
        case("verify: nobody of that name", Models, NotFound, |b| {
            let photo = b.photo("img7.jpg");
            b.auth()
                .verify(&VerifyRequest {
                    subject: "nobody",
                    terminal: "till-1",
                    transaction: &small_payment(),
                    face_frames: &[&photo],
                    voice: None,
                    active: None,
                })
                .map(drop)
        }),
        case("verify: no frames", Models, InvalidInput, |b| {
            b.verify(&[], &small_payment()).map(drop)
        }),
        case("verify: a corrupt frame", Models, ImageDecode, |b| {
            let photo = b.photo("img7.jpg");
            b.verify(&[&photo[..photo.len() / 3]], &small_payment())
                .map(drop)
        }),
        case(
            "verify: an empty transaction id",
            Models,
            InvalidInput,
            |b| {
                let photo = b.photo("img7.jpg");
                let mut tx = small_payment();
                tx.id.clear();
                b.verify(&[&photo], &tx).map(drop)
            },
        ),
        case(
            "verify: a challenge never issued",
            Models,
            ChallengeInvalid,
            |b| {
                let photo = b.photo("img7.jpg");
                let wav = b.fsdd(1, 0);
                b.auth()
                    .verify(&VerifyRequest {
                        subject: SUBJECT,
                        terminal: "till-1",
                        transaction: &small_payment(),
                        face_frames: &[&photo],
                        voice: Some(VoiceResponse {
                            challenge_id: "no-such-challenge",
                            audio: &wav,
                        }),
                        active: None,
                    })
                    .map(drop)
            },
        ),
        case("enroll: nothing to enroll", Models, InvalidInput, |b| {
            b.auth()
                .enroll(&EnrollRequest {
                    subject: "carol",
                    terminal: "till-1",
                    ..Default::default()
                })
                .map(drop)
        }),
        case("enroll: digit 12", Models, InvalidInput, |b| {
            let wav = b.fsdd(1, 0);
            b.auth()
                .enroll(&EnrollRequest {
                    subject: "carol",
                    terminal: "till-1",
                    digits: &[(12, &wav)],
                    ..Default::default()
                })
                .map(drop)
        }),
        case("enroll: speech without digits", Models, InvalidInput, |b| {
            let photo = b.photo("img2.jpg");
            let wav = b.fsdd(1, 0);
            b.auth()
                .enroll(&EnrollRequest {
                    subject: "carol",
                    terminal: "till-1",
                    face: &[&photo],
                    speech: &[&wav],
                    ..Default::default()
                })
                .map(drop)
        }),
        case(
            "enroll: a truncated face sample",
            Models,
            ImageDecode,
            |b| {
                let photo = b.photo("img2.jpg");
                b.auth()
                    .enroll(&EnrollRequest {
                        subject: "carol",
                        terminal: "till-1",
                        face: &[&photo, &photo[..100]],
                        ..Default::default()
                    })
                    .map(drop)
            },
        ),
        case(
            "enroll: a silent digit sequence",
            Models,
            AudioSilent,
            |b| {
                let silence = util::wav_16k(&vec![0.0; 32_000]);
                b.auth()
                    .enroll(&EnrollRequest {
                        subject: "carol",
                        terminal: "till-1",
                        digit_sequences: &[&silence],
                        ..Default::default()
                    })
                    .map(drop)
            },
        ),
        case(
            "enroll: a digit sequence that is one tone, not ten words",
            Models,
            PassphraseTokens,
            |b| {
                let tone: Vec<f32> = (0..64_000)
                    .map(|i| {
                        if (16_000..48_000).contains(&i) {
                            0.3 * (i as f32 * 0.07).sin()
                        } else {
                            0.0
                        }
                    })
                    .collect();
                let wav = util::wav_16k(&tone);
                b.auth()
                    .enroll(&EnrollRequest {
                        subject: "carol",
                        terminal: "till-1",
                        digit_sequences: &[&wav],
                        ..Default::default()
                    })
                    .map(drop)
            },
        ),
        case(
            "enroll: a silent digit recording",
            Models,
            AudioSilent,
            |b| {
                let silence = util::wav_16k(&vec![0.0; 16_000]);
                b.auth()
                    .enroll(&EnrollRequest {
                        subject: "carol",
                        terminal: "till-1",
                        digits: &[(3, &silence)],
                        ..Default::default()
                    })
                    .map(drop)
            },
        ),
        case("identify: no frames", Models, InvalidInput, |b| {
            b.auth()
                .identify(&IdentifyRequest {
                    terminal: "till-1",
                    face_frames: &[],
                    top_k: 0,
                })
                .map(drop)
        }),
        case(
            "challenge: a subject with no passphrase",
            Models,
            NotFound,
            |b| {
                let big = TransactionContext {
                    transaction: Transaction::new(50_000, "EUR", Some("5411")).unwrap(),
                    ..small_payment()
                };
                b.auth().challenge(SUBJECT, "till-1", &big).map(drop)
            },
        ),
        case("delete: nobody of that name", Models, NotFound, |b| {
            b.auth().delete_subject("nobody", "till-1").map(drop)
        }),
    ]
}

#[test]
fn every_bad_input_in_the_catalogue_gets_its_error_kind() {
    let cases = catalogue();
    assert!(
        cases.len() >= 50,
        "the catalogue holds {} cases",
        cases.len()
    );
    let bench = Bench::new();
    if bench.auth.is_none() {
        util::skip("the cases that need the models (no models or runtime)");
    }
    let mut failures = Vec::new();
    let mut ran = 0;
    for case in &cases {
        if case.needs == Needs::Models && bench.auth.is_none() {
            continue;
        }
        ran += 1;
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.run)(&bench)));
        match got {
            Ok(Err(e)) if e.kind() == case.expect => {}
            Ok(Err(e)) => failures.push(format!(
                "{}: expected {}, got {}: {e:#}",
                case.name,
                case.expect,
                e.kind()
            )),
            Ok(Ok(())) => failures.push(format!(
                "{}: expected {}, but it was accepted",
                case.name, case.expect
            )),
            Err(_) => failures.push(format!("{}: panicked", case.name)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{ran} of {} catalogue cases ran", cases.len());

    // Nothing was lost: alice still verifies, the audit chain still holds.
    if bench.auth.is_some() {
        let probe = bench.photo("img7.jpg");
        assert_eq!(
            bench.verify(&[&probe], &small_payment()).unwrap(),
            Outcome::Accept
        );
        let summary = vouch::audit::verify_file(&bench.dir.path().join("audit.log")).unwrap();
        assert!(summary.records > 0);
    }
    std::io::stderr().flush().unwrap();
}

/// A request-level case for the daemon: the call and the code and kind it must get back
/// (`None`: refused before the library, e.g. by the codec).
struct RequestCase {
    name: &'static str,
    call: Call,
    code: Code,
    kind: Option<ErrorKind>,
}

enum Call {
    Verify(pb::VerifyRequest),
    Enroll(pb::EnrollRequest),
    Identify(pb::IdentifyRequest),
    Challenge(pb::ChallengeRequest),
    GetSubject(pb::GetSubjectRequest),
    DeleteSubject(pb::DeleteSubjectRequest),
    /// Raw bytes as the body of `method` (not a valid message).
    Raw(&'static str, Vec<u8>),
}

fn request_cases() -> Vec<RequestCase> {
    use ErrorKind::*;
    let verify = |subject: &str, transaction: Option<pb::Transaction>, frames: Vec<pb::Image>| {
        Call::Verify(pb::VerifyRequest {
            subject: subject.into(),
            transaction,
            frames,
            voice: None,
            movement: None,
        })
    };
    let probe = || face("img7.jpg");
    let tone = || util::wav_16k(&sine(1.0, 0.3));
    let audio = |data, format: pb::AudioFormat| {
        Some(pb::Audio {
            data,
            format: format as i32,
        })
    };
    let enroll_digit = |digit, audio| {
        Call::Enroll(pb::EnrollRequest {
            subject: "carol".into(),
            digits: vec![pb::DigitRecording { digit, audio }],
            ..Default::default()
        })
    };
    let with_currency = |currency: &str| {
        let mut t = tx("t-bad", 450);
        t.currency = currency.into();
        Some(t)
    };
    let r = |name, call, code, kind| RequestCase {
        name,
        call,
        code,
        kind,
    };
    let truncated = {
        let mut image = probe();
        image.data.truncate(image.data.len() / 3);
        image
    };
    vec![
        r(
            "verify: an empty subject",
            verify("", Some(tx("t", 450)), vec![probe()]),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "verify: a subject with a newline",
            verify("alice\nx", Some(tx("t", 450)), vec![probe()]),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "verify: nobody of that name",
            verify("nobody", Some(tx("t", 450)), vec![probe()]),
            Code::NotFound,
            Some(NotFound),
        ),
        r(
            "verify: no transaction",
            verify("alice", None, vec![probe()]),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "verify: currency \"eur\"",
            verify("alice", with_currency("eur"), vec![probe()]),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "verify: no frames",
            verify("alice", Some(tx("t", 450)), vec![]),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "verify: a truncated frame",
            verify("alice", Some(tx("t", 450)), vec![truncated]),
            Code::InvalidArgument,
            Some(ImageDecode),
        ),
        r(
            "verify: a JPEG declared PNG",
            verify(
                "alice",
                Some(tx("t", 450)),
                vec![pb::Image {
                    format: pb::ImageFormat::Png as i32,
                    ..probe()
                }],
            ),
            Code::InvalidArgument,
            Some(ImageDecode),
        ),
        r(
            "verify: image format 7",
            verify(
                "alice",
                Some(tx("t", 450)),
                vec![pb::Image {
                    format: 7,
                    ..probe()
                }],
            ),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "verify: a PNG declaring 100000 x 100000",
            verify(
                "alice",
                Some(tx("t", 450)),
                vec![pb::Image {
                    data: util::png_claiming(100_000, 100_000),
                    format: 0,
                }],
            ),
            Code::InvalidArgument,
            Some(ImageTooLarge),
        ),
        r(
            "verify: a voice response without audio",
            Call::Verify(pb::VerifyRequest {
                subject: "alice".into(),
                transaction: Some(tx("t", 450)),
                frames: vec![probe()],
                voice: Some(pb::VoiceResponse {
                    challenge_id: "c".into(),
                    audio: None,
                }),
                movement: None,
            }),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "verify: a challenge never issued",
            Call::Verify(pb::VerifyRequest {
                subject: "alice".into(),
                transaction: Some(tx("t", 450)),
                frames: vec![probe()],
                voice: Some(pb::VoiceResponse {
                    challenge_id: "no-such-challenge".into(),
                    audio: audio(tone(), pb::AudioFormat::Wav),
                }),
                movement: None,
            }),
            Code::FailedPrecondition,
            Some(ChallengeInvalid),
        ),
        r(
            "enroll: nothing to enroll",
            Call::Enroll(pb::EnrollRequest {
                subject: "carol".into(),
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "enroll: digit 12",
            enroll_digit(12, audio(tone(), pb::AudioFormat::Wav)),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "enroll: a digit recording without audio",
            enroll_digit(1, None),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "enroll: a silent digit recording",
            enroll_digit(
                1,
                audio(
                    util::wav_16k(&vec![0.0; 16_000]),
                    pb::AudioFormat::Unspecified,
                ),
            ),
            Code::InvalidArgument,
            Some(AudioSilent),
        ),
        r(
            "enroll: a WAV declared FLAC",
            enroll_digit(1, audio(tone(), pb::AudioFormat::Flac)),
            Code::InvalidArgument,
            Some(AudioDecode),
        ),
        r(
            "enroll: a digit sequence that is not audio",
            Call::Enroll(pb::EnrollRequest {
                subject: "carol".into(),
                digit_sequences: vec![pb::Audio {
                    data: b"not audio at all".to_vec(),
                    format: pb::AudioFormat::Unspecified as i32,
                }],
                ..Default::default()
            }),
            Code::InvalidArgument,
            Some(AudioDecode),
        ),
        r(
            "identify: no frames",
            Call::Identify(pb::IdentifyRequest {
                frames: vec![],
                top_k: 0,
            }),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "challenge: nobody of that name",
            Call::Challenge(pb::ChallengeRequest {
                subject: "nobody".into(),
                transaction: Some(tx("t", 50_000)),
            }),
            Code::NotFound,
            Some(NotFound),
        ),
        r(
            "challenge: no transaction",
            Call::Challenge(pb::ChallengeRequest {
                subject: "alice".into(),
                transaction: None,
            }),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "get subject: nobody of that name",
            Call::GetSubject(pb::GetSubjectRequest {
                subject: "nobody".into(),
            }),
            Code::NotFound,
            Some(NotFound),
        ),
        r(
            "get subject: 300 bytes",
            Call::GetSubject(pb::GetSubjectRequest {
                subject: "x".repeat(300),
            }),
            Code::InvalidArgument,
            Some(InvalidInput),
        ),
        r(
            "delete subject: nobody of that name",
            Call::DeleteSubject(pb::DeleteSubjectRequest {
                subject: "nobody".into(),
            }),
            Code::NotFound,
            Some(NotFound),
        ),
        r(
            "verify: bytes that are not protobuf",
            Call::Raw("Verify", vec![0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x01]),
            Code::InvalidArgument,
            None,
        ),
        r(
            "enroll: a field of the wrong wire type",
            Call::Raw("Enroll", vec![0x0D, 0x01, 0x02, 0x03]),
            Code::InvalidArgument,
            None,
        ),
    ]
}

/// Bytes in, bytes out: sends what the typed client cannot (a body that is not a message).
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }

    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// Sends one request case; the status it was refused with (or `None`: it succeeded).
async fn send(daemon: &InProcess, call: Call) -> Option<tonic::Status> {
    let mut client = daemon.unix_client().await;
    let refused = |r: std::result::Result<(), tonic::Status>| r.err();
    match call {
        Call::Verify(m) => refused(client.verify(m).await.map(drop)),
        Call::Enroll(m) => refused(client.enroll(m).await.map(drop)),
        Call::Identify(m) => refused(client.identify(m).await.map(drop)),
        Call::Challenge(m) => refused(client.challenge(m).await.map(drop)),
        Call::GetSubject(m) => refused(client.get_subject(m).await.map(drop)),
        Call::DeleteSubject(m) => refused(client.delete_subject(m).await.map(drop)),
        Call::Raw(method, body) => {
            let mut grpc = tonic::client::Grpc::new(daemon.unix_channel().await);
            grpc.ready().await.unwrap();
            let path = format!("/vouch.v1.Vouch/{method}").parse().unwrap();
            refused(
                grpc.unary(tonic::Request::new(body), path, RawCodec)
                    .await
                    .map(drop),
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_leave_a_running_daemon_serving() {
    let Some(daemon) = InProcess::start("").await else {
        return;
    };
    let mut client = daemon.unix_client().await;
    let enrolled = client
        .enroll(pb::EnrollRequest {
            subject: SUBJECT.into(),
            face: vec![face("img2.jpg"), face("img6.jpg")],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(enrolled.decision, pb::Decision::Accept as i32);

    let cases = request_cases();
    let mut failures = Vec::new();
    for case in cases {
        let Some(status) = send(&daemon, case.call).await else {
            failures.push(format!("{}: accepted", case.name));
            continue;
        };
        let kind = status
            .metadata()
            .get(vouch::daemon::ERROR_KIND_METADATA)
            .map(|v| v.to_str().unwrap().to_string());
        if status.code() != case.code || kind.as_deref() != case.kind.map(ErrorKind::as_str) {
            failures.push(format!(
                "{}: expected {:?} {:?}, got {:?} {kind:?}: {}",
                case.name,
                case.code,
                case.kind,
                status.code(),
                status.message()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Still serving, and still right: the genuine customer is accepted, someone else is not,
    // and nothing the bad requests sent was stored.
    let genuine = client
        .verify(pb::VerifyRequest {
            subject: SUBJECT.into(),
            transaction: Some(tx("t-after", 450)),
            frames: vec![face("img7.jpg")],
            voice: None,
            movement: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(genuine.decision, pb::Decision::Accept as i32, "{genuine:?}");
    let impostor = client
        .verify(pb::VerifyRequest {
            subject: SUBJECT.into(),
            transaction: Some(tx("t-impostor", 450)),
            frames: vec![face("img27.jpg")],
            voice: None,
            movement: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(impostor.reasons, ["face_mismatch"]);
    let carol = client
        .get_subject(pb::GetSubjectRequest {
            subject: "carol".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        carol.code(),
        Code::NotFound,
        "a refused enrollment stored nothing"
    );
}
