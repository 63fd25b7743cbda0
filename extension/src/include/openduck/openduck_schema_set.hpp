//===----------------------------------------------------------------------===//
// OpenDuckSchemaSet: every schema, table and column of the remote database at
// one snapshot, loaded with one catalog query (duckdb_schemas/columns/tables
// on the server). A transaction loads one on first use and drops it after a
// write, so the next lookup sees the new state.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/common/arrow/arrow_wrapper.hpp"
#include "openduck/openduck_schema_entry.hpp"

namespace duckdb {

class OpenDuckCatalog;

class OpenDuckSchemaSet {
public:
	//! Load the catalog of the remote database at `snapshot` (-1: latest).
	static shared_ptr<OpenDuckSchemaSet> Load(OpenDuckCatalog &catalog, ClientContext &context, int64_t snapshot);

	optional_ptr<OpenDuckSchemaEntry> GetSchema(const Identifier &name);
	void Scan(const std::function<void(SchemaCatalogEntry &)> &callback);
	//! The snapshot the catalog was read from (-1: the database has no snapshot yet).
	int64_t SnapshotId() const {
		return snapshot_id;
	}

private:
	OpenDuckSchemaEntry &AddSchema(OpenDuckCatalog &catalog, const string &name);
	void ReadRows(OpenDuckCatalog &catalog, ClientContext &context, unique_ptr<ArrowArrayStreamWrapper> stream);

	vector<unique_ptr<OpenDuckSchemaEntry>> schemas;
	identifier_map_t<idx_t> schema_index;
	int64_t snapshot_id = -1;
};

} // namespace duckdb
