//===----------------------------------------------------------------------===//
// OpenDuckFilterSql: turns a filter DuckDB offers to push into an
// OpenDuckScan into a SQL condition the server evaluates, so only matching
// rows cross the wire. It accepts only forms whose meaning is identical on
// the server (the same DuckDB): comparisons, BETWEEN, IN, IS [NOT] NULL,
// NOT, AND/OR and boolean columns, over plain columns and constants of
// simple types. Anything else (casts, functions, collations, parameters,
// volatile expressions) stays local.
//
// It also reads the filters DuckDB hands the scan at run time (TableFilters,
// e.g. the min/max and IN-list filters a hash join derives from its local
// build side): TryTranslateImplied sends the server a condition every row
// the filter keeps satisfies; the scan still applies the filter itself.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/planner/expression.hpp"
#include "duckdb/planner/operator/logical_get.hpp"

namespace duckdb {

class OpenDuckFilterSql {
public:
	//! For filters over the columns of `get` (bound column references).
	OpenDuckFilterSql(const LogicalGet &get, const vector<string> &column_names);
	//! For a table filter on one column (its expressions refer to it as #0).
	explicit OpenDuckFilterSql(string column_name);

	//! The SQL of `filter`, or false if it must be evaluated locally.
	bool TryTranslate(const Expression &filter, string &sql) const;
	//! SQL implied by `filter`: its optional parts unwrapped, the untranslatable
	//! parts of an AND dropped. False if nothing of it translates.
	bool TryTranslateImplied(const Expression &filter, string &sql) const;

private:
	bool Column(const Expression &expr, string &sql) const;
	bool Constant(const Expression &expr, string &sql) const;
	bool Operand(const Expression &expr, string &sql) const;
	bool Comparison(const Expression &expr, string &sql) const;
	bool Between(const Expression &expr, string &sql) const;
	bool Operator(const Expression &expr, string &sql) const;
	bool Conjunction(const Expression &expr, string &sql) const;
	static bool SimpleType(const LogicalType &type);

	optional_ptr<const LogicalGet> get;
	optional_ptr<const vector<string>> column_names;
	//! The column a table filter's #0 stands for.
	string filter_column;
};

} // namespace duckdb
