#include "openduck/openduck_insert.hpp"

#include "duckdb/catalog/catalog_entry/schema_catalog_entry.hpp"
#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/common/types/column/column_data_collection.hpp"
#include "duckdb/common/vector_operations/vector_operations.hpp"
#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_chunk_stream.hpp"
#include "openduck/openduck_sql.hpp"

namespace duckdb {

class OpenDuckInsertGlobalState : public GlobalSinkState {
public:
	OpenDuckInsertGlobalState(ClientContext &context, const vector<LogicalType> &types) : rows(context, types) {
	}

	mutex lock;
	ColumnDataCollection rows;
	int64_t rows_affected = 0;
};

static void ColumnsOf(const ColumnList &columns, vector<string> &names, vector<LogicalType> &types) {
	for (auto &column : columns.Physical()) {
		names.push_back(column.Name().GetIdentifierName());
		types.push_back(column.Type());
	}
}

OpenDuckInsert::OpenDuckInsert(PhysicalPlan &plan, LogicalOperator &op, OpenDuckCatalog &catalog_p,
                               TableCatalogEntry &table)
    : PhysicalOperator(plan, PhysicalOperatorType::EXTENSION, op.types, op.estimated_cardinality),
      catalog(catalog_p) {
	vector<string> names;
	ColumnsOf(table.GetColumns(), names, input_types);
	target = OpenDuckSql::Table(table.schema.name.GetIdentifierName(), table.name.GetIdentifierName());
	remote_sql = "INSERT INTO " + target + " " + OpenDuckSql::SelectIngest(names, input_types);
	SetWireTypes();
}

OpenDuckInsert::OpenDuckInsert(PhysicalPlan &plan, LogicalOperator &op, OpenDuckCatalog &catalog_p,
                               SchemaCatalogEntry &schema, unique_ptr<BoundCreateTableInfo> info)
    : PhysicalOperator(plan, PhysicalOperatorType::EXTENSION, op.types, op.estimated_cardinality),
      catalog(catalog_p) {
	auto &create = info->Base();
	vector<string> names;
	ColumnsOf(create.columns, names, input_types);
	target = OpenDuckSql::Table(schema.name.GetIdentifierName(), create.GetTableName().GetIdentifierName());
	remote_sql = OpenDuckSql::CreatePrefix(create.on_conflict, "TABLE") + target + " AS " +
	             OpenDuckSql::SelectIngest(names, input_types);
	SetWireTypes();
}

void OpenDuckInsert::SetWireTypes() {
	for (auto &type : input_types) {
		wire_types.push_back(OpenDuckSql::WireType(type));
		needs_cast = needs_cast || wire_types.back() != type;
	}
}

InsertionOrderPreservingMap<string> OpenDuckInsert::ParamsToString() const {
	InsertionOrderPreservingMap<string> result;
	result["Table"] = catalog.GetClient().Database() + "." + target;
	return result;
}

unique_ptr<GlobalSinkState> OpenDuckInsert::GetGlobalSinkState(ClientContext &context) const {
	return make_uniq<OpenDuckInsertGlobalState>(context, wire_types);
}

SinkResultType OpenDuckInsert::Sink(ExecutionContext &context, DataChunk &chunk, OperatorSinkInput &input) const {
	auto &state = input.global_state.Cast<OpenDuckInsertGlobalState>();
	lock_guard<mutex> guard(state.lock);
	if (!needs_cast) {
		state.rows.Append(chunk);
		return SinkResultType::NEED_MORE_INPUT;
	}
	// Values Arrow cannot carry travel as text; the remote statement casts them back.
	DataChunk wire;
	wire.Initialize(context.client, wire_types, chunk.size());
	wire.SetChildCardinality(chunk.size());
	for (idx_t i = 0; i < chunk.ColumnCount(); i++) {
		if (wire_types[i] == input_types[i]) {
			wire.data[i].Reference(chunk.data[i]);
		} else {
			VectorOperations::Cast(context.client, chunk.data[i], wire.data[i], chunk.size());
		}
	}
	state.rows.Append(wire);
	return SinkResultType::NEED_MORE_INPUT;
}

SinkFinalizeType OpenDuckInsert::Finalize(Pipeline &pipeline, Event &event, ClientContext &context,
                                          OperatorSinkFinalizeInput &input) const {
	auto &state = input.global_state.Cast<OpenDuckInsertGlobalState>();
	ArrowArrayStream stream;
	OpenDuckChunkStream::Export(context, state.rows, stream);
	auto result = catalog.GetClient().ExecuteIngest(remote_sql, OpenDuckSql::INGEST_TABLE, stream);
	catalog.AfterWrite(context, result);
	state.rows_affected = result.rows_affected;
	return SinkFinalizeType::READY;
}

SourceResultType OpenDuckInsert::GetDataInternal(ExecutionContext &context, DataChunk &chunk,
                                                 OperatorSourceInput &input) const {
	auto &state = sink_state->Cast<OpenDuckInsertGlobalState>();
	chunk.SetChildCardinality(1);
	chunk.data[0].Reference(Value::BIGINT(state.rows_affected), count_t(1));
	return SourceResultType::FINISHED;
}

} // namespace duckdb
