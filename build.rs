//! Compiles the TensorFlow / TensorFlow Serving schemas in `proto/` with the pure-Rust `protox`
//! compiler (no system `protoc` needed) and hands the descriptors to prost-build. The same
//! descriptor set is kept in OUT_DIR for descriptor-aware decoding (prost-reflect). With the
//! `serve` feature, tonic's service generator adds the gRPC servers and clients of the services
//! in the same schemas.

use std::path::{Path, PathBuf};

fn proto_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            proto_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("proto");
    println!("cargo:rerun-if-changed=proto");
    let mut files = Vec::new();
    proto_files(&root, &mut files)?;
    files.sort();
    let relative: Vec<PathBuf> = files
        .iter()
        .map(|f| f.strip_prefix(&root).map(Path::to_path_buf))
        .collect::<Result<_, _>>()?;

    let descriptors = protox::compile(&relative, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let encoded = prost::Message::encode_to_vec(&descriptors);
    std::fs::write(out_dir.join("descriptors.binpb"), encoded)?;

    let mut config = prost_build::Config::new();
    config.btree_map(["."]);
    // gRPC services (PredictionService, ModelService, ...) are generated beside the messages
    // they use, servers for `smtool serve` and clients for tests and users of the library; a
    // build without the `serve` feature has the messages only.
    #[cfg(feature = "serve")]
    config.service_generator(
        tonic_prost_build::configure()
            .build_server(true)
            .build_client(true)
            .build_transport(false)
            .service_generator(),
    );
    config.compile_fds(descriptors)?;
    Ok(())
}
