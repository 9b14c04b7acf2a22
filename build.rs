//! Compiles the gRPC contract (`proto/vouch/v1/vouch.proto`) with protox, a protobuf compiler
//! in Rust, so the build needs no `protoc`. Also writes the encoded descriptor set that
//! server reflection serves. Only with the `daemon` feature: nothing else uses the contract.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(feature = "daemon")]
    compile_protos()?;
    Ok(())
}

#[cfg(feature = "daemon")]
fn compile_protos() -> Result<(), Box<dyn std::error::Error>> {
    use prost::Message;
    println!("cargo:rerun-if-changed=proto");
    let descriptors = protox::compile(["vouch/v1/vouch.proto"], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("vouch_v1_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::daemon::codec::StrictCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
