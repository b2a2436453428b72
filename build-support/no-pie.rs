//! Build script of the Lambda binaries (and of the benchmark's floor, so that
//! it is built the same way): link the release build as a position-dependent
//! executable.
//!
//! A position-independent executable must be relocated by the dynamic loader
//! before `main`: the AWS SDK puts about 55,000 pointers in tables (vtables,
//! string tables, endpoint rules), so the loader wrote ~630 KiB of pages
//! before the function could ask for its first event. That was 1 to 2 ms
//! of a 6.6 to 7.3 ms cold start (README, Performance). Linked at a fixed
//! address, those pointers are resolved by the linker and the pages are
//! read, not written.
//!
//! The price is that the executable's own code is not placed at a random
//! address (the stack, heap and shared libraries still are). This is the
//! default for Go binaries on Linux, and a Lambda function runs alone in its
//! own micro-VM, written in safe Rust, handling events from EventBridge.
//! Debug builds (the tests' binaries) stay position-independent.

fn main() {
    println!("cargo:rerun-if-env-changed=PROFILE");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
