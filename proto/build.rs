fn main() -> Result<(), Box<dyn std::error::Error>> {
    // protox compiles the .proto in pure Rust, so no protoc is needed on the machine.
    let descriptors = protox::compile(["tutti/bridge/v1/bridge.proto"], ["."])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=tutti/bridge/v1/bridge.proto");
    Ok(())
}
