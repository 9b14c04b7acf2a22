//! `vouchd`: the vouch daemon. Parses its arguments, loads the configuration, and serves (see
//! `vouch::daemon`); every decision is the library's.

use std::path::PathBuf;

use clap::Parser;

/// The vouch daemon: biometric verification for payment terminals over gRPC.
#[derive(Parser)]
#[command(name = "vouchd", version, about)]
struct Args {
    /// Configuration file (TOML: a `[daemon]` table plus the library's sections).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration (and load the models, keys, policy, calibrations and audit
    /// log) then exit: 0 when the daemon would start.
    #[arg(long)]
    check_config: bool,
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VOUCH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let file = match &args.config {
        Some(path) => vouch::daemon::DaemonFile::load(path),
        None => vouch::daemon::DaemonFile::from_env(),
    };
    let file = match file {
        Ok(file) => file,
        Err(e) => {
            eprintln!("vouchd: configuration: {e:#}");
            std::process::exit(2);
        }
    };
    if args.check_config {
        match vouch::daemon::Deployment::open(&file) {
            Ok(_) => {
                println!("configuration OK");
                return;
            }
            Err(e) => {
                eprintln!("vouchd: {e:#}");
                std::process::exit(2);
            }
        }
    }
    let result = vouch::daemon::run(file, |bound| {
        // One line on stdout for whoever started us (scripts, tests): where we listen.
        let unix = bound
            .unix
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string());
        let tcp = bound.tcp.map_or_else(String::new, |a| a.to_string());
        let metrics = bound.metrics.map_or_else(String::new, |a| a.to_string());
        println!("vouchd ready unix={unix} tcp={tcp} metrics={metrics}");
    });
    if let Err(e) = result {
        eprintln!("vouchd: {e:#}");
        std::process::exit(1);
    }
}
