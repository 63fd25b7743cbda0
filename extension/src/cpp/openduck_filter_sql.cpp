#include "openduck/openduck_filter_sql.hpp"

#include "duckdb/planner/expression/bound_between_expression.hpp"
#include "duckdb/planner/expression/bound_columnref_expression.hpp"
#include "duckdb/planner/expression/bound_comparison_expression.hpp"
#include "duckdb/planner/expression/bound_conjunction_expression.hpp"
#include "duckdb/planner/expression/bound_constant_expression.hpp"
#include "duckdb/planner/expression/bound_operator_expression.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/filter/expression_filter.hpp"
#include "openduck/openduck_sql.hpp"

namespace duckdb {

OpenDuckFilterSql::OpenDuckFilterSql(const LogicalGet &get_p, const vector<string> &column_names_p)
    : get(&get_p), column_names(&column_names_p) {
}

OpenDuckFilterSql::OpenDuckFilterSql(string column_name) : filter_column(std::move(column_name)) {
}

bool OpenDuckFilterSql::SimpleType(const LogicalType &type) {
	switch (type.id()) {
	case LogicalTypeId::BOOLEAN:
	case LogicalTypeId::TINYINT:
	case LogicalTypeId::SMALLINT:
	case LogicalTypeId::INTEGER:
	case LogicalTypeId::BIGINT:
	case LogicalTypeId::HUGEINT:
	case LogicalTypeId::UTINYINT:
	case LogicalTypeId::USMALLINT:
	case LogicalTypeId::UINTEGER:
	case LogicalTypeId::UBIGINT:
	case LogicalTypeId::UHUGEINT:
	case LogicalTypeId::FLOAT:
	case LogicalTypeId::DOUBLE:
	case LogicalTypeId::DECIMAL:
	case LogicalTypeId::DATE:
	case LogicalTypeId::TIME:
	case LogicalTypeId::TIMESTAMP:
	case LogicalTypeId::TIMESTAMP_MS:
	case LogicalTypeId::TIMESTAMP_NS:
	case LogicalTypeId::TIMESTAMP_SEC:
	case LogicalTypeId::UUID:
		return true;
	case LogicalTypeId::VARCHAR:
		// a collation (e.g. NOCASE) changes what = and < mean
		return StringType::GetCollation(type).empty();
	default:
		return false;
	}
}

bool OpenDuckFilterSql::Column(const Expression &expr, string &sql) const {
	if (!SimpleType(expr.GetReturnType())) {
		return false;
	}
	if (!get) {
		if (expr.GetExpressionClass() != ExpressionClass::BOUND_REF ||
		    expr.Cast<BoundReferenceExpression>().Index() != 0) {
			return false;
		}
		sql = OpenDuckSql::Quote(filter_column);
		return true;
	}
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_COLUMN_REF) {
		return false;
	}
	auto &ref = expr.Cast<BoundColumnRefExpression>();
	auto &binding = ref.Binding();
	auto &column_ids = get->GetColumnIds();
	if (ref.Depth() != 0 || binding.table_index != get->table_index || binding.column_index >= column_ids.size()) {
		return false;
	}
	auto &column = column_ids[binding.column_index];
	if (!column.HasPrimaryIndex() || column.IsVirtualColumn() || column.HasChildren() ||
	    column.GetPrimaryIndex() >= column_names->size()) {
		return false;
	}
	sql = OpenDuckSql::Quote((*column_names)[column.GetPrimaryIndex()]);
	return true;
}

bool OpenDuckFilterSql::Constant(const Expression &expr, string &sql) const {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_CONSTANT) {
		return false;
	}
	auto &value = expr.Cast<BoundConstantExpression>().GetValue();
	if (value.IsNull() || !SimpleType(value.type())) {
		return false;
	}
	// The text form of these types casts back to the same value (DuckDB's round trip).
	sql = "CAST('" + StringUtil::Replace(value.ToString(), "'", "''") + "' AS " + value.type().ToString() + ")";
	return true;
}

bool OpenDuckFilterSql::Operand(const Expression &expr, string &sql) const {
	return Column(expr, sql) || Constant(expr, sql);
}

bool OpenDuckFilterSql::Comparison(const Expression &expr, string &sql) const {
	if (!BoundComparisonExpression::IsComparison(expr)) {
		return false;
	}
	auto &comparison = expr.Cast<BoundFunctionExpression>();
	auto &left = BoundComparisonExpression::Left(comparison);
	auto &right = BoundComparisonExpression::Right(comparison);
	if (left.GetReturnType() != right.GetReturnType()) {
		return false;
	}
	string op;
	switch (expr.GetExpressionType()) {
	case ExpressionType::COMPARE_EQUAL:
		op = " = ";
		break;
	case ExpressionType::COMPARE_NOTEQUAL:
		op = " <> ";
		break;
	case ExpressionType::COMPARE_LESSTHAN:
		op = " < ";
		break;
	case ExpressionType::COMPARE_GREATERTHAN:
		op = " > ";
		break;
	case ExpressionType::COMPARE_LESSTHANOREQUALTO:
		op = " <= ";
		break;
	case ExpressionType::COMPARE_GREATERTHANOREQUALTO:
		op = " >= ";
		break;
	case ExpressionType::COMPARE_DISTINCT_FROM:
		op = " IS DISTINCT FROM ";
		break;
	case ExpressionType::COMPARE_NOT_DISTINCT_FROM:
		op = " IS NOT DISTINCT FROM ";
		break;
	default:
		return false;
	}
	string lhs, rhs;
	if (!Operand(left, lhs) || !Operand(right, rhs)) {
		return false;
	}
	sql = "(" + lhs + op + rhs + ")";
	return true;
}

bool OpenDuckFilterSql::Between(const Expression &expr, string &sql) const {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_FUNCTION ||
	    expr.GetExpressionType() != ExpressionType::COMPARE_BETWEEN) {
		return false;
	}
	auto &between = expr.Cast<BoundFunctionExpression>();
	if (!BoundBetweenExpression::HasValidBindData(between)) {
		return false;
	}
	auto &input = BoundBetweenExpression::Input(between);
	auto &lower = BoundBetweenExpression::LowerBound(between);
	auto &upper = BoundBetweenExpression::UpperBound(between);
	if (input.GetReturnType() != lower.GetReturnType() || input.GetReturnType() != upper.GetReturnType()) {
		return false;
	}
	string value, low, high;
	if (!Column(input, value) || !Operand(lower, low) || !Operand(upper, high)) {
		return false;
	}
	auto lower_op = BoundBetweenExpression::LowerInclusive(between) ? " >= " : " > ";
	auto upper_op = BoundBetweenExpression::UpperInclusive(between) ? " <= " : " < ";
	sql = "(" + value + lower_op + low + " AND " + value + upper_op + high + ")";
	return true;
}

bool OpenDuckFilterSql::Operator(const Expression &expr, string &sql) const {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_OPERATOR) {
		return false;
	}
	auto &children = expr.Cast<BoundOperatorExpression>().GetChildren();
	string child;
	switch (expr.GetExpressionType()) {
	case ExpressionType::OPERATOR_IS_NULL:
	case ExpressionType::OPERATOR_IS_NOT_NULL: {
		if (children.size() != 1 || !Column(*children[0], child)) {
			return false;
		}
		auto is_null = expr.GetExpressionType() == ExpressionType::OPERATOR_IS_NULL;
		sql = "(" + child + (is_null ? " IS NULL)" : " IS NOT NULL)");
		return true;
	}
	case ExpressionType::OPERATOR_NOT:
		if (children.size() != 1 || !TryTranslate(*children[0], child)) {
			return false;
		}
		sql = "(NOT " + child + ")";
		return true;
	case ExpressionType::COMPARE_IN:
	case ExpressionType::COMPARE_NOT_IN: {
		if (children.size() < 2 || !Column(*children[0], child)) {
			return false;
		}
		string list;
		for (idx_t i = 1; i < children.size(); i++) {
			string value;
			if (children[i]->GetReturnType() != children[0]->GetReturnType() || !Constant(*children[i], value)) {
				return false;
			}
			list += (i > 1 ? ", " : "") + value;
		}
		auto in = expr.GetExpressionType() == ExpressionType::COMPARE_IN ? " IN (" : " NOT IN (";
		sql = "(" + child + in + list + "))";
		return true;
	}
	default:
		return false;
	}
}

bool OpenDuckFilterSql::Conjunction(const Expression &expr, string &sql) const {
	if (expr.GetExpressionClass() != ExpressionClass::BOUND_CONJUNCTION) {
		return false;
	}
	auto type = expr.GetExpressionType();
	if (type != ExpressionType::CONJUNCTION_AND && type != ExpressionType::CONJUNCTION_OR) {
		return false;
	}
	auto &children = expr.Cast<BoundConjunctionExpression>().GetChildren();
	string result;
	for (auto &child : children) {
		string child_sql;
		if (!TryTranslate(*child, child_sql)) {
			return false;
		}
		result += (result.empty() ? "" : (type == ExpressionType::CONJUNCTION_AND ? " AND " : " OR ")) + child_sql;
	}
	sql = "(" + result + ")";
	return !children.empty();
}

bool OpenDuckFilterSql::TryTranslateImplied(const Expression &filter, string &sql) const {
	// An optional filter (e.g. a join's min/max or IN list) may be skipped locally, but every row the join
	// can match satisfies its condition: the server may apply it.
	auto optional_child = ExpressionFilter::GetOptionalFilterChild(filter);
	if (optional_child) {
		return TryTranslateImplied(*optional_child, sql);
	}
	if (filter.GetExpressionType() != ExpressionType::CONJUNCTION_AND) {
		return TryTranslate(filter, sql);
	}
	string result;
	for (auto &child : filter.Cast<BoundConjunctionExpression>().GetChildren()) {
		string child_sql;
		if (TryTranslateImplied(*child, child_sql)) {
			result += (result.empty() ? "" : " AND ") + child_sql;
		}
	}
	if (result.empty()) {
		return false;
	}
	sql = "(" + result + ")";
	return true;
}

bool OpenDuckFilterSql::TryTranslate(const Expression &filter, string &sql) const {
	if (filter.IsVolatile() || filter.HasParameter() || filter.GetReturnType().id() != LogicalTypeId::BOOLEAN) {
		return false;
	}
	// a BOOLEAN column on its own (WHERE flag)
	return Column(filter, sql) || Comparison(filter, sql) || Between(filter, sql) || Operator(filter, sql) ||
	       Conjunction(filter, sql);
}

} // namespace duckdb
