//===----------------------------------------------------------------------===//
// OpenDuckInsert: `INSERT INTO <remote> ...` and `CREATE TABLE <remote> AS
// ...`: every input column goes up (OpenDuckUpload) with a statement that
// casts the rows to the table's exact types.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/planner/parsed_data/bound_create_table_info.hpp"
#include "openduck/openduck_upload.hpp"

namespace duckdb {

class OpenDuckInsert : public OpenDuckUpload {
public:
	//! INSERT INTO an existing remote table (input: every column, in table order).
	OpenDuckInsert(PhysicalPlan &plan, LogicalOperator &op, OpenDuckCatalog &catalog, TableCatalogEntry &table);
	//! CREATE TABLE ... AS SELECT
	OpenDuckInsert(PhysicalPlan &plan, LogicalOperator &op, OpenDuckCatalog &catalog, SchemaCatalogEntry &schema,
	               unique_ptr<BoundCreateTableInfo> info);

private:
	//! Send every column of `columns`; their names, for the remote statement.
	vector<string> SendAll(const ColumnList &columns, vector<LogicalType> &types);
};

} // namespace duckdb
