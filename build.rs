//! Tells the API tests whether a PostgreSQL server was given (`TEST_DATABASE_URL`), so its
//! variants show as ignored, not passed, when it was not; and the same for the browser tests
//! and chromedriver (Debian's chromium-driver) on the PATH.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(test_database_url)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=test_database_url");
    }
    // The web app's browser tests.
    println!("cargo::rustc-check-cfg=cfg(chromedriver)");
    println!("cargo::rerun-if-env-changed=PATH");
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("chromedriver").is_file())
    });
    if on_path {
        println!("cargo::rustc-cfg=chromedriver");
    }
}
