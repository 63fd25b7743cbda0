//===----------------------------------------------------------------------===//
// OpenDuckScan: the table function that reads a remote table. It sends
// `SELECT <projected columns> FROM "schema"."table" [WHERE <pushed filters>]`
// to the server (on the transaction's snapshot) and streams the Arrow batches into DuckDB, casting
// to the declared column types where Arrow lost them. Projection pushdown is
// on (DuckDB needs it for count(*) and virtual columns).
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/function/table_function.hpp"

namespace duckdb {

class OpenDuckCatalog;
class OpenDuckTableEntry;

struct OpenDuckScanBindData : public TableFunctionData {
	explicit OpenDuckScanBindData(OpenDuckCatalog &catalog) : catalog(catalog) {
	}

	OpenDuckCatalog &catalog;
	//! The table scanned (UPDATE/DELETE bind against it).
	optional_ptr<TableCatalogEntry> table;
	string remote_schema;
	string remote_table;
	vector<string> names;
	vector<LogicalType> types;
	optional_idx cardinality;
	//! Conditions the server applies (pushed-down filters, ANDed).
	vector<string> filters;

	unique_ptr<FunctionData> Copy() const override {
		return make_uniq<OpenDuckScanBindData>(*this);
	}
	bool Equals(const FunctionData &other_p) const override {
		auto &other = other_p.Cast<OpenDuckScanBindData>();
		return &catalog == &other.catalog && remote_schema == other.remote_schema &&
		       remote_table == other.remote_table && names == other.names && types == other.types &&
		       filters == other.filters;
	}
};

class OpenDuckScan {
public:
	static TableFunction Function();
	static unique_ptr<FunctionData> Bind(OpenDuckTableEntry &table);
	//! The SQL the server runs for a scan of `column_ids`, with `run_time_filters` ANDed to the plan's.
	static string RemoteSql(const OpenDuckScanBindData &bind, const vector<column_t> &column_ids,
	                        const vector<string> &run_time_filters);
};

} // namespace duckdb
