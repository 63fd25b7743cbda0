//! Metadata schema and migrations, shared by SQLite and Postgres (the SQL below
//! is the common subset of both dialects).

/// Each entry upgrades the schema by one version. Never edit a released entry;
/// append a new one.
pub const MIGRATIONS: &[&[&str]] = &[&[
    "CREATE TABLE IF NOT EXISTS databases (
        name TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS snapshots (
        db TEXT NOT NULL REFERENCES databases(name),
        id BIGINT NOT NULL,
        parent BIGINT,
        size BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        name TEXT,
        pinned BIGINT NOT NULL DEFAULT 0,
        stored_bytes BIGINT NOT NULL DEFAULT 0,
        head_ref TEXT,
        PRIMARY KEY (db, id))",
    "CREATE TABLE IF NOT EXISTS snapshot_layers (
        db TEXT NOT NULL,
        snapshot BIGINT NOT NULL,
        position BIGINT NOT NULL,
        layer TEXT NOT NULL,
        PRIMARY KEY (db, snapshot, position))",
    "CREATE INDEX IF NOT EXISTS snapshot_layers_layer ON snapshot_layers (layer)",
    "CREATE TABLE IF NOT EXISTS layers (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        object_bytes BIGINT NOT NULL,
        pages BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        condemned_at BIGINT)",
    "CREATE TABLE IF NOT EXISTS layer_refs (
        layer TEXT NOT NULL,
        pack TEXT NOT NULL,
        PRIMARY KEY (layer, pack))",
    "CREATE INDEX IF NOT EXISTS layer_refs_pack ON layer_refs (pack)",
    "CREATE TABLE IF NOT EXISTS pages (
        hash TEXT PRIMARY KEY,
        layer TEXT NOT NULL,
        byte_offset BIGINT NOT NULL,
        len BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS pages_layer ON pages (layer)",
], &[
    // The one writer of each database: whoever holds an unexpired lease.
    // Every takeover bumps the epoch; a snapshot commits only under the
    // epoch its writer holds (fencing).
    "CREATE TABLE IF NOT EXISTS writer_leases (
        db TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        expires_at BIGINT NOT NULL)",
], &[
    // Query workers serving these metadata and objects (`openduck worker`):
    // gateways route by this registry, so they keep no state of their own.
    "CREATE TABLE IF NOT EXISTS workers (
        id TEXT PRIMARY KEY,
        endpoint TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        heartbeat_at BIGINT NOT NULL,
        in_flight BIGINT NOT NULL,
        status TEXT NOT NULL)",
], &[
    // Who may touch a layer object now: a writer about to commit it
    // ('writing', with an expiry its writer renews) or a gc deleting it
    // ('deleting', a tombstone). See catalog/claims.rs.
    "CREATE TABLE IF NOT EXISTS layer_claims (
        layer TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        owner TEXT NOT NULL,
        expires_at BIGINT NOT NULL)",
], &[
    // The object store this metadata belongs with (see binding.rs).
    "CREATE TABLE IF NOT EXISTS store_binding (
        singleton BIGINT PRIMARY KEY,
        id TEXT NOT NULL,
        store_url TEXT NOT NULL,
        bound_at BIGINT NOT NULL,
        marked BIGINT NOT NULL DEFAULT 0)",
], &[
    // Layers open snapshot views read, per holder process (see pins.rs).
    "CREATE TABLE IF NOT EXISTS view_pins (
        holder TEXT NOT NULL,
        layer TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (holder, layer))",
]];

/// Layers that no snapshot uses and no open view pins, directly or as a pack
/// of a used or pinned layer. (gc reaps expired pins before it uses this.)
pub const UNREFERENCED: &str = "id NOT IN (SELECT layer FROM snapshot_layers)
     AND id NOT IN (SELECT r.pack FROM layer_refs r JOIN snapshot_layers s ON s.layer = r.layer)
     AND id NOT IN (SELECT layer FROM view_pins)
     AND id NOT IN (SELECT r.pack FROM layer_refs r JOIN view_pins v ON v.layer = r.layer)";
