#include "openduck/openduck_remote_result.hpp"

#include "duckdb/common/vector_operations/vector_operations.hpp"

namespace duckdb {

OpenDuckRemoteResult::OpenDuckRemoteResult(ClientContext &context, unique_ptr<ArrowArrayStreamWrapper> stream,
                                           vector<idx_t> remote_column_p)
    : reader(context, std::move(stream)), remote_column(std::move(remote_column_p)) {
	remote_chunk.Initialize(context, reader.Types());
	for (auto column : remote_column) {
		if (column != DConstants::INVALID_INDEX && column >= reader.Types().size()) {
			throw IOException("OpenDuck: the server returned %d columns, expected more", reader.Types().size());
		}
	}
}

void OpenDuckRemoteResult::SetLocalFilter(ClientContext &context, unique_ptr<Expression> filter) {
	local_filter = std::move(filter);
	filter_executor = make_uniq<ExpressionExecutor>(context, *local_filter);
}

void OpenDuckRemoteResult::Fill(ClientContext &context, DataChunk &output) {
	lock_guard<mutex> guard(lock);
	while (FillNext(context, output)) {
		if (!filter_executor) {
			return;
		}
		SelectionVector selection(STANDARD_VECTOR_SIZE);
		auto kept = filter_executor->SelectExpression(output, selection);
		if (kept == output.size()) {
			return;
		}
		if (kept > 0) {
			output.Slice(selection, kept);
			return;
		}
		output.Reset(); // nothing kept: an empty chunk would end the scan, so read on
	}
	output.SetChildCardinality(0);
}

bool OpenDuckRemoteResult::FillNext(ClientContext &context, DataChunk &output) {
	if (!reader.Next(remote_chunk)) {
		return false;
	}
	auto count = remote_chunk.size();
	output.SetChildCardinality(count);
	for (idx_t i = 0; i < output.ColumnCount(); i++) {
		auto &target = output.data[i];
		auto remote = i < remote_column.size() ? remote_column[i] : DConstants::INVALID_INDEX;
		if (remote == DConstants::INVALID_INDEX) {
			target.Reference(Value(target.GetType()), count_t(count));
			continue;
		}
		auto &source = remote_chunk.data[remote];
		if (source.GetType() == target.GetType()) {
			target.Reference(source);
		} else {
			VectorOperations::Cast(context, source, target, count);
		}
	}
	return true;
}

void OpenDuckRemoteResult::Scan(ClientContext &context, TableFunctionInput &data, DataChunk &output) {
	data.global_state->Cast<OpenDuckRemoteResult>().Fill(context, output);
}

} // namespace duckdb
