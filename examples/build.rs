//! Generates Rust types and typed topics from the schemas, as a user's crate
//! would: the generated files land in $OUT_DIR and `include_schema!` in
//! src/lib.rs pulls them in.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    shmidl_codegen::compile(
        &["schema/robot.shmidl", "schema/quickstart.shmidl"],
        &["schema"],
    )?;
    Ok(())
}
