//! Compiles proto/ into Rust types, the tonic client and server, and a
//! file descriptor set that the daemon serves through gRPC reflection.
//! protox parses the protos in-process, so no system `protoc` is needed.
//! With the `server` feature it also builds berth-init (server/monitor/child/berth-init.rs), a
//! small static program that berthd embeds and runs as a container's PID 1.

use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/berth/v1/containers.proto",
        "proto/berth/v1/events.proto",
        "proto/berth/v1/system.proto",
        "proto/berth/v1/images.proto",
        "proto/berth/v1/networks.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("berth_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .codec_path("crate::codec::Codec")
        .compile_fds(fds)?;
    if std::env::var_os("CARGO_FEATURE_SERVER").is_some() {
        build_init(&out)?;
    }
    Ok(())
}

/// Compiles server/monitor/child/berth-init.rs into a static, stripped executable: it runs
/// inside containers, whose rootfs may have no C library at all.
fn build_init(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let src = "server/monitor/child/berth-init.rs";
    println!("cargo:rerun-if-changed={src}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let target = std::env::var("TARGET")?;
    let status = std::process::Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "berth_init",
            "--target",
        ])
        .arg(&target)
        .args([
            "-C",
            "target-feature=+crt-static",
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
            "-o",
        ])
        .arg(out.join("berth-init"))
        .arg(src)
        .status()?;
    if !status.success() {
        return Err(format!("building {src} failed: {status}").into());
    }
    Ok(())
}
