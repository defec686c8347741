//! Tells the API tests whether a PostgreSQL server was given (`TEST_DATABASE_URL`), so its
//! variants show as ignored, not passed, when it was not.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(test_database_url)");
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=TEST_DATABASE_URL");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=test_database_url");
    }
}
