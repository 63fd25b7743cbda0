#include "openduck/openduck_insert.hpp"

#include "duckdb/catalog/catalog_entry/schema_catalog_entry.hpp"
#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "openduck/openduck_sql.hpp"

namespace duckdb {

vector<string> OpenDuckInsert::SendAll(const ColumnList &columns, vector<LogicalType> &types) {
	vector<string> names;
	for (auto &column : columns.Physical()) {
		names.push_back(column.Name().GetIdentifierName());
		types.push_back(column.Type());
		SendColumn(types.size() - 1, column.Type());
	}
	return names;
}

OpenDuckInsert::OpenDuckInsert(PhysicalPlan &plan, LogicalOperator &op, OpenDuckCatalog &catalog,
                               TableCatalogEntry &table)
    : OpenDuckUpload(plan, op, catalog, "OPENDUCK_INSERT") {
	vector<LogicalType> types;
	auto names = SendAll(table.GetColumns(), types);
	target = OpenDuckSql::Table(table.schema.name.GetIdentifierName(), table.name.GetIdentifierName());
	remote_sql = "INSERT INTO " + target + " " + OpenDuckSql::SelectIngest(names, types);
}

OpenDuckInsert::OpenDuckInsert(PhysicalPlan &plan, LogicalOperator &op, OpenDuckCatalog &catalog,
                               SchemaCatalogEntry &schema, unique_ptr<BoundCreateTableInfo> info)
    : OpenDuckUpload(plan, op, catalog, "OPENDUCK_INSERT") {
	auto &create = info->Base();
	vector<LogicalType> types;
	auto names = SendAll(create.columns, types);
	target = OpenDuckSql::Table(schema.name.GetIdentifierName(), create.GetTableName().GetIdentifierName());
	remote_sql = OpenDuckSql::CreatePrefix(create.on_conflict, "TABLE") + target + " AS " +
	             OpenDuckSql::SelectIngest(names, types);
	creates_table = true;
}

} // namespace duckdb
