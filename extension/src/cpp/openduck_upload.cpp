#include "openduck/openduck_upload.hpp"

#include "duckdb/common/types/column/column_data_collection.hpp"
#include "duckdb/common/vector_operations/vector_operations.hpp"
#include "duckdb/planner/logical_operator.hpp"
#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_chunk_stream.hpp"
#include "openduck/openduck_sql.hpp"
#include "openduck/openduck_transaction.hpp"

namespace duckdb {

class OpenDuckUploadState : public GlobalSinkState {
public:
	OpenDuckUploadState(ClientContext &context, const vector<LogicalType> &types) : rows(context, types) {
	}

	ColumnDataCollection rows;
	int64_t rows_affected = 0;
};

OpenDuckUpload::OpenDuckUpload(PhysicalPlan &plan, LogicalOperator &op, OpenDuckCatalog &catalog_p, string name_p)
    : PhysicalOperator(plan, PhysicalOperatorType::EXTENSION, op.types, op.estimated_cardinality), catalog(catalog_p),
      name(std::move(name_p)) {
}

void OpenDuckUpload::SendColumn(idx_t index, const LogicalType &type) {
	sent_columns.push_back(index);
	wire_types.push_back(OpenDuckSql::WireType(type));
}

InsertionOrderPreservingMap<string> OpenDuckUpload::ParamsToString() const {
	InsertionOrderPreservingMap<string> result;
	result["Table"] = catalog.GetClient().Database() + "." + target;
	result["Runs On"] = "OpenDuck server " + catalog.GetClient().Endpoint();
	result["Remote SQL"] = remote_sql;
	return result;
}

unique_ptr<GlobalSinkState> OpenDuckUpload::GetGlobalSinkState(ClientContext &context) const {
	return make_uniq<OpenDuckUploadState>(context, wire_types);
}

SinkResultType OpenDuckUpload::Sink(ExecutionContext &context, DataChunk &chunk, OperatorSinkInput &input) const {
	auto &state = input.global_state.Cast<OpenDuckUploadState>();
	DataChunk wire;
	wire.Initialize(context.client, wire_types, chunk.size());
	wire.SetChildCardinality(chunk.size());
	for (idx_t i = 0; i < sent_columns.size(); i++) {
		auto &source = chunk.data[sent_columns[i]];
		if (source.GetType() == wire_types[i]) {
			wire.data[i].Reference(source);
		} else {
			// a value Arrow cannot carry travels as text; the remote statement casts it back
			VectorOperations::Cast(context.client, source, wire.data[i], chunk.size());
		}
	}
	state.rows.Append(wire);
	return SinkResultType::NEED_MORE_INPUT;
}

SinkFinalizeType OpenDuckUpload::Finalize(Pipeline &pipeline, Event &event, ClientContext &context,
                                          OperatorSinkFinalizeInput &input) const {
	auto &state = input.global_state.Cast<OpenDuckUploadState>();
	if (state.rows.Count() == 0 && !run_when_empty) {
		return SinkFinalizeType::READY; // nothing to change: no write, no new snapshot
	}
	ArrowArrayStream stream;
	OpenDuckChunkStream::Export(context, state.rows, stream);
	auto &transaction = OpenDuckTransaction::Get(context, catalog);
	auto result = transaction.ExecuteIngest(context, remote_sql, OpenDuckSql::INGEST_TABLE, stream);
	if (creates_table) {
		transaction.ChangedCatalog();
	}
	state.rows_affected = result.rows_affected;
	return SinkFinalizeType::READY;
}

SourceResultType OpenDuckUpload::GetDataInternal(ExecutionContext &context, DataChunk &chunk,
                                                 OperatorSourceInput &input) const {
	auto &state = sink_state->Cast<OpenDuckUploadState>();
	chunk.SetChildCardinality(1);
	chunk.data[0].Reference(Value::BIGINT(state.rows_affected), count_t(1));
	return SourceResultType::FINISHED;
}

} // namespace duckdb
