//! Compiles proto/ into Rust types, the tonic client and server, and a
//! file descriptor set that the daemon serves through gRPC reflection.
//! protox parses the protos in-process, so no system `protoc` is needed.

use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/berth/v1/containers.proto",
        "proto/berth/v1/events.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("berth_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
