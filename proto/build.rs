fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "openduck/v1/execution.proto";
    println!("cargo:rerun-if-changed={proto}");
    tonic_prost_build::configure().compile_protos(&[proto], &["."])?;
    Ok(())
}
