//! Compiles proto/ with protox (a pure-Rust protobuf compiler from crates.io), so building
//! rperf needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["grpc_service.proto", "model_config.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Tensor payloads as `bytes::Bytes`, so responses are sliced, not copied.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
