//! The exporter's link step for its release binary (src/build.rs, `discard_unwind_tables`), so
//! that the floor is measured the same way: no `.eh_frame` or `.gcc_except_table`.
fn main() {
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let musl = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "musl");
    let Some(out) = std::env::var_os("OUT_DIR") else {
        return;
    };
    if release && musl {
        let script = std::path::Path::new(&out).join("discard-unwind-tables.ld");
        let text = "SECTIONS { /DISCARD/ : { *(.eh_frame) *(.gcc_except_table) \
                    *(.gcc_except_table.*) } } INSERT AFTER .text;\n";
        if std::fs::write(&script, text).is_ok() {
            println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        }
    }
}
