//===----------------------------------------------------------------------===//
// OpenDuckFilterSql: turns a filter DuckDB offers to push into an
// OpenDuckScan into a SQL condition the server evaluates, so only matching
// rows cross the wire. It accepts only forms whose meaning is identical on
// the server (the same DuckDB): comparisons, BETWEEN, IN, IS [NOT] NULL,
// NOT, AND/OR and boolean columns, over plain columns and constants of
// simple types. Anything else (casts, functions, collations, parameters,
// volatile expressions) stays local.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/planner/expression.hpp"
#include "duckdb/planner/operator/logical_get.hpp"

namespace duckdb {

class OpenDuckFilterSql {
public:
	OpenDuckFilterSql(const LogicalGet &get, const vector<string> &column_names);

	//! The SQL of `filter`, or false if it must be evaluated locally.
	bool TryTranslate(const Expression &filter, string &sql) const;

private:
	bool Column(const Expression &expr, string &sql) const;
	bool Constant(const Expression &expr, string &sql) const;
	bool Operand(const Expression &expr, string &sql) const;
	bool Comparison(const Expression &expr, string &sql) const;
	bool Between(const Expression &expr, string &sql) const;
	bool Operator(const Expression &expr, string &sql) const;
	bool Conjunction(const Expression &expr, string &sql) const;
	static bool SimpleType(const LogicalType &type);

	const LogicalGet &get;
	const vector<string> &column_names;
};

} // namespace duckdb
