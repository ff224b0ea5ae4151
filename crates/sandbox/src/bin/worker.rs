//! A bare sandbox worker, for the sandbox crate's own tests.

fn main() {
    #[cfg(target_os = "linux")]
    codemode_sandbox::worker::main();
    #[cfg(not(target_os = "linux"))]
    eprintln!("sandbox worker processes need Linux");
}
