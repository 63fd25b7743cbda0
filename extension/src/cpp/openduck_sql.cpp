#include "openduck/openduck_sql.hpp"

#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/common/string_util.hpp"

namespace duckdb {

string OpenDuckSql::Quote(const string &identifier) {
	return "\"" + StringUtil::Replace(identifier, "\"", "\"\"") + "\"";
}

string OpenDuckSql::Table(const string &schema, const string &table) {
	return Quote(schema) + "." + Quote(table);
}

string OpenDuckSql::IngestColumn(idx_t index) {
	return "c" + std::to_string(index);
}

bool OpenDuckSql::NeedsText(const LogicalType &type) {
	switch (type.id()) {
	case LogicalTypeId::ENUM:
	case LogicalTypeId::TIME_TZ:
	case LogicalTypeId::BIT:
	case LogicalTypeId::BIGNUM:
	case LogicalTypeId::UNION:
		return true;
	case LogicalTypeId::LIST:
		return NeedsText(ListType::GetChildType(type));
	case LogicalTypeId::ARRAY:
		return NeedsText(ArrayType::GetChildType(type));
	case LogicalTypeId::MAP:
		return NeedsText(MapType::KeyType(type)) || NeedsText(MapType::ValueType(type));
	case LogicalTypeId::STRUCT:
		for (auto &child : StructType::GetChildTypes(type)) {
			if (NeedsText(child.second)) {
				return true;
			}
		}
		return false;
	default:
		return false;
	}
}

LogicalType OpenDuckSql::WireType(const LogicalType &type) {
	return NeedsText(type) ? LogicalType::VARCHAR : type;
}

string OpenDuckSql::CreatePrefix(OnCreateConflict on_conflict, const string &kind) {
	switch (on_conflict) {
	case OnCreateConflict::REPLACE_ON_CONFLICT:
		return "CREATE OR REPLACE " + kind + " ";
	case OnCreateConflict::IGNORE_ON_CONFLICT:
		return "CREATE " + kind + " IF NOT EXISTS ";
	default:
		return "CREATE " + kind + " ";
	}
}

string OpenDuckSql::CreateTable(const string &schema, const CreateTableInfo &info) {
	return CreatePrefix(info.on_conflict, "TABLE") + Table(schema, info.GetTableName().GetIdentifierName()) +
	       TableCatalogEntry::ColumnsToSQL(info.columns, info.constraints);
}

string OpenDuckSql::SelectIngest(const vector<string> &names, const vector<LogicalType> &types) {
	string sql = "SELECT ";
	for (idx_t i = 0; i < types.size(); i++) {
		if (i > 0) {
			sql += ", ";
		}
		sql += "CAST(" + Quote(IngestColumn(i)) + " AS " + types[i].ToString() + ") AS " + Quote(names[i]);
	}
	return sql + " FROM " + INGEST_TABLE;
}

} // namespace duckdb
