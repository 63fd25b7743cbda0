#!/usr/bin/env bash
# Build the OpenDuck DuckDB extension and print the path of
# openduck.duckdb_extension (DuckDB v2.0.0, linux_amd64, unsigned: load it with
# allow_unsigned_extensions). Usage: extension/build.sh
#
# It also lays out an extension repository next to it
# ($CARGO_TARGET_DIR/debug/extension-repository/v2.0.0/linux_amd64/, plain and
# gzipped), so `INSTALL openduck FROM '<that directory or its URL>'` works.
#
# Cargo builds the cdylib (C++ catalog + Rust gRPC client, DuckDB linked in
# statically); this script appends DuckDB's 512-byte extension footer:
# eight 32-byte NUL-padded fields (unused x3, ABI "CPP", extension version,
# DuckDB version, platform, magic "4"), then a 256-byte signature (zeros).
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/openduck/target}"

DUCKDB_VERSION="v2.0.0"
PLATFORM="linux_amd64"
EXTENSION_VERSION="v$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)"

# Built in one invocation with the server's library: cargo then resolves
# the build dependencies of libduckdb-sys the same way for both, so DuckDB
# is compiled once per machine (alone, the extension's smaller dependency
# tree gives libduckdb-sys another build hash: a second 30-minute DuckDB
# build). The extension links only its own dependencies (openduck-proto).
cargo build -p openduck-extension -p query --lib >&2

lib="$CARGO_TARGET_DIR/debug/libopenduck_extension.so"
out="$CARGO_TARGET_DIR/debug/openduck.duckdb_extension"
tmp="$out.tmp.$$"

field() { # a 32-byte NUL-padded field
	local value="$1"
	if [ "${#value}" -gt 32 ]; then
		echo "footer field '$value' is longer than 32 bytes" >&2
		exit 1
	fi
	printf '%s' "$value"
	head -c "$((32 - ${#value}))" /dev/zero
}

cp "$lib" "$tmp"
{
	field ""
	field ""
	field ""
	field "CPP"
	field "$EXTENSION_VERSION"
	field "$DUCKDB_VERSION"
	field "$PLATFORM"
	field "4"
	head -c 256 /dev/zero
} >>"$tmp"
mv "$tmp" "$out"

repo="$CARGO_TARGET_DIR/debug/extension-repository/$DUCKDB_VERSION/$PLATFORM"
mkdir -p "$repo"
cp "$out" "$repo/openduck.duckdb_extension.tmp.$$" && mv "$repo/openduck.duckdb_extension.tmp.$$" "$repo/openduck.duckdb_extension"
gzip -c "$out" >"$repo/openduck.duckdb_extension.gz.tmp.$$" && mv "$repo/openduck.duckdb_extension.gz.tmp.$$" "$repo/openduck.duckdb_extension.gz"
echo "extension repository: $CARGO_TARGET_DIR/debug/extension-repository" >&2
echo "$out"
