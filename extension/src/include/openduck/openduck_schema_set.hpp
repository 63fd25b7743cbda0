//===----------------------------------------------------------------------===//
// OpenDuckSchemaSet: every schema, table and column of the remote database,
// loaded with one catalog query (duckdb_schemas/columns/tables on the
// server), tagged with the server's catalog version it was read at.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/common/arrow/arrow_wrapper.hpp"
#include "openduck/openduck_schema_entry.hpp"
#include "openduck_client.h"

namespace duckdb {

class OpenDuckCatalog;

class OpenDuckSchemaSet {
public:
	//! Load the catalog of the remote database at `snapshot` (-1: latest), inside the server-side
	//! transaction `txn` (nullptr: the committed state).
	static shared_ptr<OpenDuckSchemaSet> Load(OpenDuckCatalog &catalog, ClientContext &context, int64_t snapshot,
	                                          const openduck_txn *txn);

	optional_ptr<OpenDuckSchemaEntry> GetSchema(const Identifier &name);
	void Scan(const std::function<void(SchemaCatalogEntry &)> &callback);
	//! The snapshot the catalog was read from (-1: the database has no snapshot yet).
	int64_t SnapshotId() const {
		return snapshot_id;
	}
	uint64_t CatalogVersion() const {
		return catalog_version;
	}

private:
	OpenDuckSchemaEntry &AddSchema(OpenDuckCatalog &catalog, const string &name);
	void ReadRows(OpenDuckCatalog &catalog, ClientContext &context, unique_ptr<ArrowArrayStreamWrapper> stream);

	vector<unique_ptr<OpenDuckSchemaEntry>> schemas;
	identifier_map_t<idx_t> schema_index;
	int64_t snapshot_id = -1;
	uint64_t catalog_version = 0;
};

} // namespace duckdb
