#include "openduck/openduck_modify.hpp"

#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/operator/logical_delete.hpp"
#include "duckdb/planner/operator/logical_update.hpp"
#include "openduck/openduck_sql.hpp"

namespace duckdb {

static constexpr const char *TARGET_ALIAS = "__openduck_target";

static string TableOf(TableCatalogEntry &table) {
	return OpenDuckSql::Table(table.schema.name.GetIdentifierName(), table.name.GetIdentifierName());
}

//! The target row whose rowid was sent up first (ingest column c0).
static string RowIdMatch() {
	return string(TARGET_ALIAS) + ".rowid = " + OpenDuckSql::INGEST_TABLE + "." + OpenDuckSql::IngestColumn(0);
}

OpenDuckModify::OpenDuckModify(PhysicalPlan &plan, LogicalDelete &op, OpenDuckCatalog &catalog)
    : OpenDuckUpload(plan, op, catalog, "OPENDUCK_DELETE") {
	run_when_empty = false;
	target = TableOf(op.table);
	SendColumn(op.expressions[0]->Cast<BoundReferenceExpression>().Index(), LogicalType::BIGINT);
	remote_sql = "DELETE FROM " + target + " AS " + TARGET_ALIAS + " USING " + OpenDuckSql::INGEST_TABLE +
	             " WHERE " + RowIdMatch();
}

OpenDuckModify::OpenDuckModify(PhysicalPlan &plan, LogicalUpdate &op, OpenDuckCatalog &catalog,
                               const vector<LogicalType> &input)
    : OpenDuckUpload(plan, op, catalog, "OPENDUCK_UPDATE") {
	run_when_empty = false;
	target = TableOf(op.table);
	// The rowid is the last input column.
	SendColumn(input.size() - 1, LogicalType::BIGINT);
	idx_t sent = 1;
	string set;
	for (idx_t i = 0; i < op.expressions.size(); i++) {
		auto &column = op.table.GetColumns().GetColumn(op.columns[i]);
		set += (i ? ", " : "") + OpenDuckSql::Quote(column.Name().GetIdentifierName()) + " = ";
		if (op.expressions[i]->GetExpressionType() == ExpressionType::VALUE_DEFAULT) {
			set += "DEFAULT";
			continue;
		}
		auto index = op.expressions[i]->Cast<BoundReferenceExpression>().Index();
		SendColumn(index, input[index]);
		set += "CAST(" + string(OpenDuckSql::INGEST_TABLE) + "." + OpenDuckSql::IngestColumn(sent++) + " AS " +
		       column.Type().ToString() + ")";
	}
	remote_sql = "UPDATE " + target + " AS " + TARGET_ALIAS + " SET " + set + " FROM " + OpenDuckSql::INGEST_TABLE +
	             " WHERE " + RowIdMatch();
}

} // namespace duckdb
