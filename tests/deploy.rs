//! The deployment files in `deploy/`: the systemd unit passes `systemd-analyze verify` with
//! nothing to say and keeps its exposure score low, and the example configuration is one
//! `vouchd` accepts.

use std::path::Path;
use std::process::Command;

use crate::util::skip;

fn deploy(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

/// The unit in a folder of its own, its `ExecStart` pointed at this build's `vouchd` (verify
/// checks that it exists); `None` (reason printed) without `systemd-analyze`.
fn unit_to_verify() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        skip("systemd-analyze is not installed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(deploy("vouchd.service")).unwrap();
    assert!(text.contains("ExecStart=/usr/local/bin/vouchd "), "{text}");
    let text = text.replace("/usr/local/bin/vouchd", env!("CARGO_BIN_EXE_vouchd"));
    let path = dir.path().join("vouchd.service");
    std::fs::write(&path, text).unwrap();
    Some((dir, path))
}

#[test]
fn the_systemd_unit_verifies_cleanly_and_is_hardened() {
    let Some((_dir, unit)) = unit_to_verify() else {
        return;
    };
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stderr).to_string()
        + &String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{said}");
    // Unknown or misspelt directives are only warnings: none is allowed.
    assert!(said.trim().is_empty(), "systemd-analyze verify: {said}");

    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let exposure: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for vouchd.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in: {report}"));
    assert!(exposure <= 2.0, "exposure {exposure}:\n{report}");
    for directive in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "StateDirectory=vouch",
        "RuntimeDirectory=vouch",
        "User=vouchd",
        "Group=vouch",
    ] {
        assert!(
            std::fs::read_to_string(&unit)
                .unwrap()
                .lines()
                .any(|l| l == directive),
            "{directive} missing"
        );
    }
}

#[test]
fn a_misspelt_directive_is_caught() {
    let Some((_dir, unit)) = unit_to_verify() else {
        return;
    };
    let text = std::fs::read_to_string(&unit)
        .unwrap()
        .replace("NoNewPrivileges=yes", "NoNewPrivilege=yes");
    std::fs::write(&unit, text).unwrap();
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stderr);
    assert!(said.contains("NoNewPrivilege"), "{said}");
}

#[test]
fn the_example_configuration_is_accepted() {
    let text = std::fs::read_to_string(deploy("vouchd.toml")).unwrap();
    let file = vouch::daemon::DaemonFile::parse(&text).unwrap();
    assert_eq!(
        file.daemon.unix_socket,
        Path::new("/run/vouch/vouchd.sock"),
        "the socket is in the unit's RuntimeDirectory"
    );
    assert!(file.daemon.fleet.is_some() && file.daemon.ship.is_some());
    let sysusers = std::fs::read_to_string(deploy("vouch.sysusers")).unwrap();
    assert!(sysusers.lines().any(|l| l.starts_with("u vouchd -:vouch ")));
}
