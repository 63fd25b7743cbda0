//===----------------------------------------------------------------------===//
// OpenDuckQueryFunction: `openduck_query(<attached db>, <sql> [, write := true])`
// runs SQL on the server of an attached OpenDuck database. DuckDB's remote
// pushdown (Catalog::RemoteExecute) rewrites every query (or subquery) that
// only touches one OpenDuck database into a call of this function, so the
// whole query runs on the server and only its result crosses the wire.
// Reads learn their exact result types with a remote DESCRIBE (nothing runs
// at bind time); writes return one BIGINT "Count" row.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/function/table_function.hpp"
#include "duckdb/parser/tableref.hpp"

namespace duckdb {

class OpenDuckQueryFunction {
public:
	static TableFunction Function();
	//! The table ref RemoteExecute returns: a call of openduck_query.
	static unique_ptr<TableRef> Ref(const string &catalog, const string &sql, bool is_write);
};

} // namespace duckdb
