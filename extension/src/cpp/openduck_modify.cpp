#include "openduck/openduck_modify.hpp"

#include "duckdb/catalog/catalog_entry/table_catalog_entry.hpp"
#include "duckdb/common/types/column/column_data_collection.hpp"
#include "duckdb/common/vector_operations/vector_operations.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/operator/logical_delete.hpp"
#include "duckdb/planner/operator/logical_update.hpp"
#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_chunk_stream.hpp"
#include "openduck/openduck_sql.hpp"

namespace duckdb {

static constexpr const char *TARGET_ALIAS = "__openduck_target";

class OpenDuckModifyGlobalState : public GlobalSinkState {
public:
	OpenDuckModifyGlobalState(ClientContext &context, const vector<LogicalType> &types) : rows(context, types) {
	}

	ColumnDataCollection rows;
	int64_t rows_affected = 0;
};

static string TableOf(TableCatalogEntry &table) {
	return OpenDuckSql::Table(table.schema.name.GetIdentifierName(), table.name.GetIdentifierName());
}

static string RowIdMatch() {
	return string(TARGET_ALIAS) + ".rowid = " + OpenDuckSql::INGEST_TABLE + "." + OpenDuckSql::IngestColumn(0);
}

OpenDuckModify::OpenDuckModify(PhysicalPlan &plan, LogicalDelete &op, OpenDuckCatalog &catalog_p)
    : PhysicalOperator(plan, PhysicalOperatorType::EXTENSION, op.types, op.estimated_cardinality), catalog(catalog_p),
      is_update(false), target(TableOf(op.table)) {
	sent_columns.push_back(op.expressions[0]->Cast<BoundReferenceExpression>().Index());
	wire_types.push_back(LogicalType::BIGINT);
	remote_sql = "DELETE FROM " + target + " AS " + TARGET_ALIAS + " USING " + OpenDuckSql::INGEST_TABLE +
	             " WHERE " + RowIdMatch();
}

OpenDuckModify::OpenDuckModify(PhysicalPlan &plan, LogicalUpdate &op, OpenDuckCatalog &catalog_p,
                               const vector<LogicalType> &input)
    : PhysicalOperator(plan, PhysicalOperatorType::EXTENSION, op.types, op.estimated_cardinality), catalog(catalog_p),
      is_update(true), target(TableOf(op.table)) {
	// The rowid is the last input column.
	sent_columns.push_back(input.size() - 1);
	wire_types.push_back(LogicalType::BIGINT);
	string set;
	for (idx_t i = 0; i < op.expressions.size(); i++) {
		auto &column = op.table.GetColumns().GetColumn(op.columns[i]);
		set += (i ? ", " : "") + OpenDuckSql::Quote(column.Name().GetIdentifierName()) + " = ";
		if (op.expressions[i]->GetExpressionType() == ExpressionType::VALUE_DEFAULT) {
			set += "DEFAULT";
			continue;
		}
		auto index = op.expressions[i]->Cast<BoundReferenceExpression>().Index();
		set += "CAST(" + string(OpenDuckSql::INGEST_TABLE) + "." + OpenDuckSql::IngestColumn(sent_columns.size()) +
		       " AS " + column.Type().ToString() + ")";
		sent_columns.push_back(index);
		wire_types.push_back(OpenDuckSql::WireType(input[index]));
	}
	remote_sql = "UPDATE " + target + " AS " + TARGET_ALIAS + " SET " + set + " FROM " + OpenDuckSql::INGEST_TABLE +
	             " WHERE " + RowIdMatch();
}

InsertionOrderPreservingMap<string> OpenDuckModify::ParamsToString() const {
	InsertionOrderPreservingMap<string> result;
	result["Table"] = catalog.GetClient().Database() + "." + target;
	result["Remote SQL"] = remote_sql;
	return result;
}

unique_ptr<GlobalSinkState> OpenDuckModify::GetGlobalSinkState(ClientContext &context) const {
	return make_uniq<OpenDuckModifyGlobalState>(context, wire_types);
}

SinkResultType OpenDuckModify::Sink(ExecutionContext &context, DataChunk &chunk, OperatorSinkInput &input) const {
	auto &state = input.global_state.Cast<OpenDuckModifyGlobalState>();
	DataChunk wire;
	wire.Initialize(context.client, wire_types, chunk.size());
	wire.SetChildCardinality(chunk.size());
	for (idx_t i = 0; i < sent_columns.size(); i++) {
		auto &source = chunk.data[sent_columns[i]];
		if (source.GetType() == wire_types[i]) {
			wire.data[i].Reference(source);
		} else {
			VectorOperations::Cast(context.client, source, wire.data[i], chunk.size());
		}
	}
	state.rows.Append(wire);
	return SinkResultType::NEED_MORE_INPUT;
}

SinkFinalizeType OpenDuckModify::Finalize(Pipeline &pipeline, Event &event, ClientContext &context,
                                          OperatorSinkFinalizeInput &input) const {
	auto &state = input.global_state.Cast<OpenDuckModifyGlobalState>();
	if (state.rows.Count() == 0) {
		return SinkFinalizeType::READY; // nothing matched: no write, no new snapshot
	}
	ArrowArrayStream stream;
	OpenDuckChunkStream::Export(context, state.rows, stream);
	// Rowids are those of the snapshot the scan read: the write only runs if that is still the latest.
	auto read_snapshot = catalog.ReadSnapshot(context);
	auto result = catalog.GetClient().ExecuteIngest(remote_sql, OpenDuckSql::INGEST_TABLE, stream, read_snapshot);
	catalog.AfterWrite(context, result);
	state.rows_affected = result.rows_affected;
	return SinkFinalizeType::READY;
}

SourceResultType OpenDuckModify::GetDataInternal(ExecutionContext &context, DataChunk &chunk,
                                                 OperatorSourceInput &input) const {
	auto &state = sink_state->Cast<OpenDuckModifyGlobalState>();
	chunk.SetChildCardinality(1);
	chunk.data[0].Reference(Value::BIGINT(state.rows_affected), count_t(1));
	return SourceResultType::FINISHED;
}

} // namespace duckdb
