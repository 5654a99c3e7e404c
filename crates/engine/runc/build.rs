// berth-runc starts twice per container operation (the second time from its
// sealed copy, see berth_runtime::selfexe): a position-dependent executable has
// its relocations resolved at link time, so each start skips that work.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
