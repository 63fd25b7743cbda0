//===----------------------------------------------------------------------===//
// OpenDuckSql: the SQL text the extension sends to the server (quoting,
// CREATE TABLE, the SELECT that turns ingested Arrow columns into a table's
// exact types).
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/parser/parsed_data/create_table_info.hpp"

namespace duckdb {

class OpenDuckSql {
public:
	//! Name of the ingested rows in statements run by execute_ingest.
	static constexpr const char *INGEST_TABLE = "__openduck_ingest";

	//! "name" with embedded quotes doubled.
	static string Quote(const string &identifier);
	//! "schema"."table"
	static string Table(const string &schema, const string &table);
	//! Arrow column name of input column `index` in an ingest ("c0", "c1", ...).
	static string IngestColumn(idx_t index);
	//! CREATE [OR REPLACE] TABLE [IF NOT EXISTS] "schema"."table" (<columns and constraints>)
	static string CreateTable(const string &schema, const CreateTableInfo &info);
	//! SELECT CAST("c0" AS <type0>) AS "<name0>", ... FROM __openduck_ingest
	static string SelectIngest(const vector<string> &names, const vector<LogicalType> &types);
	//! Whether values of `type` must cross the wire as text: Arrow (or the
	//! server's Arrow reader) cannot carry them faithfully (ENUM, TIMETZ, BIT,
	//! BIGNUM, UNION, or a nested type holding one). Text casts back exactly.
	static bool NeedsText(const LogicalType &type);
	//! The type a column of `type` has on the wire.
	static LogicalType WireType(const LogicalType &type);
	//! The CREATE prefix honoring OR REPLACE / IF NOT EXISTS.
	static string CreatePrefix(OnCreateConflict on_conflict, const string &kind);
};

} // namespace duckdb
