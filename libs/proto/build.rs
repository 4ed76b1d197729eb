//! Compiles `proto/` with protox (pure Rust, no system protoc) and generates
//! prost messages and tonic clients/servers.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "jiesu/common/v1/common.proto",
        "jiesu/intake/v1/intake.proto",
        "jiesu/dispatch/v1/dispatch.proto",
        "jiesu/notification/v1/notification.proto",
        "jiesu/grid/v1/grid.proto",
        "jiesu/evaluation/v1/evaluation.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", root.join(f).display());
    }
    let fds = protox::compile(files, [&root])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
