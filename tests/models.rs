//! Model manifests against real files: integrity, I/O contract, fetching over HTTP, and a
//! missing runtime.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use vouch::models::{FetchOutcome, FetchSource, Manifest, fetch_model};
use vouch::{Config, Engine, ErrorKind};

use crate::util;

/// The built-in manifest with one edit, written to a temp file.
fn edited_manifest(dir: &std::path::Path, from: &str, to: &str) -> PathBuf {
    edited_manifest_nth(dir, from, to, 0)
}

/// The built-in manifest with the `nth` (from 0) occurrence of `from` replaced.
fn edited_manifest_nth(dir: &std::path::Path, from: &str, to: &str, nth: usize) -> PathBuf {
    let text = vouch::models::DEFAULT_MANIFEST;
    let (at, _) = text
        .match_indices(from)
        .nth(nth)
        .unwrap_or_else(|| panic!("the manifest no longer contains {from:?} {} times", nth + 1));
    let path = dir.join("manifest.toml");
    let edited = format!("{}{to}{}", &text[..at], &text[at + from.len()..]);
    std::fs::write(&path, edited).unwrap();
    path
}

#[test]
fn a_model_file_with_the_wrong_sha256_is_refused_at_start() {
    let Ok(mut config) = util::real_config() else {
        return util::skip("no models or runtime");
    };
    let dir = tempfile::tempdir().unwrap();
    // The default face embedder's file (the quantised MobileFaceNet).
    config.models.manifest = Some(edited_manifest(
        dir.path(),
        "ef4d261aeb48b05d475b6da873dcf9f7c16bcbf4da6332dac90d504a4355b6ca",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ));
    let err = config.validate().and_then(Engine::new).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelIntegrity);
    assert!(err.to_string().contains("mobilefacenet"), "{err}");
}

#[test]
fn a_model_whose_input_shape_differs_from_the_manifest_is_refused() {
    let Ok(mut config) = util::real_config() else {
        return util::skip("no models or runtime");
    };
    let dir = tempfile::tempdir().unwrap();
    // The default face embedder (the quantised MobileFaceNet, the second with this input).
    config.models.manifest = Some(edited_manifest_nth(
        dir.path(),
        "inputs = [{ name = \"input0\", shape = [1, 3, 112, 112] }]",
        "inputs = [{ name = \"input0\", shape = [1, 3, 128, 128] }]",
        1,
    ));
    let err = config.validate().and_then(Engine::new).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelContract);
    let msg = err.to_string();
    assert!(
        msg.contains("mobilefacenet") && msg.contains("128"),
        "{msg}"
    );
}

#[test]
fn a_model_with_a_wrong_output_name_is_refused() {
    let Ok(mut config) = util::real_config() else {
        return util::skip("no models or runtime");
    };
    let dir = tempfile::tempdir().unwrap();
    config.models.manifest = Some(edited_manifest(
        dir.path(),
        "{ name = \"kps_32\"",
        "{ name = \"landmarks_32\"",
    ));
    let err = config.validate().and_then(Engine::new).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelContract, "{err}");
}

#[test]
fn a_missing_model_directory_says_how_to_fetch() {
    let Ok(mut config) = util::real_config() else {
        return util::skip("no models or runtime");
    };
    config.models.dir = PathBuf::from("/nonexistent/models");
    let err = config.validate().and_then(Engine::new).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelIntegrity);
    assert!(err.to_string().contains("vouch models fetch"), "{err}");
}

#[test]
fn a_missing_runtime_library_is_a_clear_error() {
    let mut config = Config::default();
    config.runtime.library = Some(PathBuf::from("/nonexistent/lib/libonnxruntime.so"));
    let err = config.validate().and_then(Engine::new).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Runtime);
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
}

/// Serves files from `root` over HTTP/1.1 on loopback for `requests` requests, then stops.
fn serve(root: PathBuf, requests: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap() == 0 || header == "\r\n" {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            let response = match std::fs::read(root.join(&path)) {
                Ok(body) if !path.contains("..") => {
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(&body);
                    r
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            stream.write_all(&response).unwrap();
        }
    });
    (base, handle)
}

#[test]
fn fetch_downloads_and_verifies_over_http() {
    let Some(shared) = util::shared() else {
        return;
    };
    let manifest = Manifest::builtin();
    let spec = manifest.get("yunet_s").unwrap();
    let (base, server) = serve(shared.join("models"), 1);
    let dest = tempfile::tempdir().unwrap();
    let outcome = fetch_model(spec, &FetchSource::Url(base), dest.path()).unwrap();
    assert_eq!(outcome, FetchOutcome::Downloaded);
    vouch::models::verify_file(spec, &spec.path_in(dest.path())).unwrap();
    server.join().unwrap();
    // Present and intact: nothing is downloaded again (the server is gone).
    let again = fetch_model(
        spec,
        &FetchSource::Url("http://127.0.0.1:9".into()),
        dest.path(),
    )
    .unwrap();
    assert_eq!(again, FetchOutcome::AlreadyPresent);
}

#[test]
fn fetch_refuses_a_tampered_download_and_a_404() {
    let root = tempfile::tempdir().unwrap();
    let manifest = Manifest::builtin();
    let spec = manifest.get("yunet_s").unwrap();
    let served = spec.path_in(root.path());
    std::fs::create_dir_all(served.parent().unwrap()).unwrap();
    std::fs::write(&served, b"a model someone swapped").unwrap();
    let (base, server) = serve(root.path().to_path_buf(), 2);
    let dest = tempfile::tempdir().unwrap();
    let err = fetch_model(spec, &FetchSource::Url(base.clone()), dest.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fetch);
    assert!(err.to_string().contains("sha256"), "{err}");
    assert!(
        !spec.path_in(dest.path()).exists(),
        "a tampered model was written"
    );
    let other = manifest.get("yunet_n").unwrap();
    let err = fetch_model(other, &FetchSource::Url(base), dest.path()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Fetch);
    assert!(err.to_string().contains("404"), "{err}");
    server.join().unwrap();
}
