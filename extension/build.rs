//! Compiles the C++ half of the extension (src/cpp) against the headers of
//! the DuckDB that libduckdb-sys builds (DEP_DUCKDB_INCLUDE), the way DuckDB
//! builds its own loadable extensions (FACTS §4): C++17, -fPIC, NDEBUG,
//! DUCKDB_BUILD_LOADABLE_EXTENSION, hidden visibility. libduckdb-sys links
//! that DuckDB (libduckdb.a) into the cdylib; rustc's version script exports
//! only the Rust entry point `openduck_duckdb_cpp_init`, and
//! --exclude-libs,ALL keeps every archive's symbols local as well.

use std::path::{Path, PathBuf};

fn cpp_sources(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "cpp"))
        .collect();
    files.sort();
    files
}

fn main() {
    let include = std::env::var("DEP_DUCKDB_INCLUDE")
        .expect("DEP_DUCKDB_INCLUDE is not set: libduckdb-sys must be a direct dependency with the `bundled` feature");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let sources = cpp_sources(&manifest.join("src/cpp"));

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .files(&sources)
        .include(manifest.join("src/include"))
        .include(&include)
        .flag("-std=c++17")
        .flag("-fPIC")
        .flag("-fvisibility=hidden")
        .flag("-fvisibility-inlines-hidden")
        .define("NDEBUG", None)
        .define("DUCKDB_BUILD_LOADABLE_EXTENSION", None)
        // DuckDB's headers are not warning-clean under -Wall; errors still fail the build.
        .warnings(false)
        .debug(false)
        .opt_level(2);
    build.compile("openduck_cpp");

    println!("cargo:rustc-cdylib-link-arg=-Wl,--exclude-libs,ALL");
    println!("cargo:rerun-if-changed=src/cpp");
    println!("cargo:rerun-if-changed=src/include");
    for source in &sources {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    println!("cargo:rerun-if-env-changed=DEP_DUCKDB_INCLUDE");
}
