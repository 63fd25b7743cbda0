//===----------------------------------------------------------------------===//
// OpenDuckTableEntry: a table (or view) of the remote database. It keeps its
// own ColumnList (pure in DuckDB 2.0) and scans with OpenDuckScan.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/parser/parsed_data/create_table_info.hpp"

namespace duckdb {

class OpenDuckTableEntry : public TableCatalogEntry {
public:
	//! `cardinality`: the server's row estimate, if it gave one.
	OpenDuckTableEntry(Catalog &catalog, SchemaCatalogEntry &schema, CreateTableInfo &info, optional_idx cardinality);

	const ColumnList &GetColumns() const override {
		return columns;
	}
	unique_ptr<BaseStatistics> GetStatistics(ClientContext &context, column_t column_id) override;
	TableFunction GetScanFunction(ClientContext &context, unique_ptr<FunctionData> &bind_data) override;
	TableStorageInfo GetStorageInfo(ClientContext &context) override;

	//! The schema name on the server.
	const string &RemoteSchema() const;
	//! The server's row estimate, if any.
	optional_idx Cardinality() const {
		return cardinality;
	}
	//! The table name on the server.
	const string &RemoteName() const {
		return name.GetIdentifierName();
	}

private:
	ColumnList columns;
	optional_idx cardinality;
};

} // namespace duckdb
