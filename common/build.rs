//! Records the compiler version and git revision for `<exporter>_build_info`.
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned());
    let revision = std::env::var("VIGIE_REVISION").ok().unwrap_or_else(|| {
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    });
    let branch = std::env::var("VIGIE_BRANCH").unwrap_or_else(|_| "main".to_owned());
    println!("cargo:rustc-env=VIGIE_RUSTC_VERSION={rustc_version}");
    println!("cargo:rustc-env=VIGIE_REVISION={revision}");
    println!("cargo:rustc-env=VIGIE_BRANCH={branch}");
    println!("cargo:rerun-if-env-changed=VIGIE_REVISION");
    println!("cargo:rerun-if-env-changed=VIGIE_BRANCH");
}
