#include "openduck/openduck_schema_set.hpp"

#include "duckdb/parser/constraints/not_null_constraint.hpp"
#include "duckdb/parser/parsed_data/create_schema_info.hpp"
#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_chunk_reader.hpp"

namespace duckdb {

//! One row per column (and one per schema without tables), in table order.
static const char *CATALOG_SQL = R"(
SELECT s.schema_name, c.table_name, c.column_name, c.data_type, c.is_nullable, t.estimated_size
FROM duckdb_schemas() s
LEFT JOIN duckdb_columns() c
  ON c.database_name = s.database_name AND c.schema_name = s.schema_name
LEFT JOIN duckdb_tables() t
  ON t.database_name = c.database_name AND t.schema_name = c.schema_name AND t.table_name = c.table_name
WHERE s.database_name = current_database() AND s.schema_name NOT IN ('information_schema', 'pg_catalog')
ORDER BY s.schema_name, c.table_name, c.column_index)";

static LogicalType ParseRemoteType(ClientContext &context, const string &type_name) {
	try {
		return TransformStringToLogicalType(type_name, context);
	} catch (std::exception &) {
		// A type this client does not know (e.g. from a server extension): read it as text.
		return LogicalType::VARCHAR;
	}
}

//! The table being assembled from consecutive column rows.
struct PendingTable {
	optional_ptr<OpenDuckSchemaEntry> schema;
	unique_ptr<CreateTableInfo> info;
	optional_idx cardinality;

	void Flush() {
		if (info) {
			schema->AddTable(*info, cardinality);
		}
		info.reset();
		cardinality = optional_idx();
	}
};

shared_ptr<OpenDuckSchemaSet> OpenDuckSchemaSet::Load(OpenDuckCatalog &catalog, ClientContext &context,
                                                      int64_t snapshot, const openduck_txn *txn) {
	auto set = make_shared_ptr<OpenDuckSchemaSet>();
	openduck_result result {0, 0, 0, 0};
	unique_ptr<ArrowArrayStreamWrapper> stream;
	string message;
	auto code = catalog.GetClient().TryQuery(CATALOG_SQL, snapshot, txn, result, stream, message);
	if (code == OPENDUCK_ERROR_FAILED_PRECONDITION && snapshot < 0 && message.find("no snapshot") != string::npos) {
		// A new database another server writes, with nothing sealed yet: DuckDB's default schema.
		set->AddSchema(catalog, DEFAULT_SCHEMA);
		return set;
	}
	if (code != OPENDUCK_OK) {
		OpenDuckClient::ThrowError(code, message);
	}
	set->snapshot_id = result.snapshot_id;
	set->catalog_version = result.catalog_version;
	set->ReadRows(catalog, context, std::move(stream));
	return set;
}

void OpenDuckSchemaSet::ReadRows(OpenDuckCatalog &catalog, ClientContext &context,
                                 unique_ptr<ArrowArrayStreamWrapper> stream) {
	OpenDuckChunkReader reader(context, std::move(stream));
	if (reader.Types().size() != 6) {
		throw IOException("OpenDuck: unexpected catalog result from the server (%d columns)", reader.Types().size());
	}
	DataChunk chunk;
	chunk.Initialize(context, reader.Types());
	PendingTable pending;
	string pending_schema, pending_table;
	while (reader.Next(chunk)) {
		for (idx_t row = 0; row < chunk.size(); row++) {
			auto schema_name = chunk.GetValue(0, row).ToString();
			auto table_value = chunk.GetValue(1, row);
			if (!GetSchema(Identifier(schema_name))) {
				AddSchema(catalog, schema_name);
			}
			if (table_value.IsNull()) {
				continue; // a schema without tables
			}
			auto table_name = table_value.ToString();
			if (!pending.info || schema_name != pending_schema || table_name != pending_table) {
				pending.Flush();
				pending.schema = GetSchema(Identifier(schema_name));
				pending.info = make_uniq<CreateTableInfo>(*pending.schema, Identifier(table_name));
				pending_schema = schema_name;
				pending_table = table_name;
				auto size = chunk.GetValue(5, row);
				if (!size.IsNull()) {
					pending.cardinality = optional_idx(NumericCast<idx_t>(size.GetValue<int64_t>()));
				}
			}
			auto column_name = chunk.GetValue(2, row).ToString();
			auto type = ParseRemoteType(context, chunk.GetValue(3, row).ToString());
			auto &columns = pending.info->columns;
			auto index = LogicalIndex(columns.LogicalColumnCount());
			columns.AddColumn(ColumnDefinition(Identifier(column_name), std::move(type)));
			auto nullable = chunk.GetValue(4, row);
			if (!nullable.IsNull() && !nullable.GetValue<bool>()) {
				pending.info->constraints.push_back(make_uniq<NotNullConstraint>(index));
			}
		}
	}
	pending.Flush();
}

OpenDuckSchemaEntry &OpenDuckSchemaSet::AddSchema(OpenDuckCatalog &catalog, const string &name) {
	CreateSchemaInfo info;
	// a schema name lives in the Schema() slot of the qualified name
	info.SetSchema(Identifier(name));
	auto entry = make_uniq<OpenDuckSchemaEntry>(catalog, info);
	auto &result = *entry;
	schema_index[Identifier(name)] = schemas.size();
	schemas.push_back(std::move(entry));
	return result;
}

optional_ptr<OpenDuckSchemaEntry> OpenDuckSchemaSet::GetSchema(const Identifier &name) {
	auto it = schema_index.find(name);
	if (it == schema_index.end()) {
		return nullptr;
	}
	return schemas[it->second].get();
}

void OpenDuckSchemaSet::Scan(const std::function<void(SchemaCatalogEntry &)> &callback) {
	for (auto &schema : schemas) {
		callback(*schema);
	}
}

} // namespace duckdb
