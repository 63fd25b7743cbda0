//===----------------------------------------------------------------------===//
// OpenDuckRemoteResult: the global state of a table function that streams one
// remote result. It reads the Arrow batches as they arrive and fills DuckDB's
// output chunks, casting where Arrow carried a different type than the one
// the function declared (e.g. ENUM arriving as VARCHAR).
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/execution/expression_executor.hpp"
#include "duckdb/function/table_function.hpp"
#include "openduck/openduck_chunk_reader.hpp"

namespace duckdb {

class OpenDuckRemoteResult : public GlobalTableFunctionState {
public:
	//! `remote_column[i]`: the result column that output column i reads, or
	//! DConstants::INVALID_INDEX for a virtual column (filled with NULL).
	OpenDuckRemoteResult(ClientContext &context, unique_ptr<ArrowArrayStreamWrapper> stream,
	                     vector<idx_t> remote_column);

	//! One thread reads the stream (the server produces it in order).
	idx_t MaxThreads() const override {
		return 1;
	}

	//! Keep only the output rows for which `filter` (over the output columns) is true.
	void SetLocalFilter(ClientContext &context, unique_ptr<Expression> filter);

	//! Fill `output` with the next rows (none at the end).
	void Fill(ClientContext &context, DataChunk &output);

	//! A table function's `function` callback over this state.
	static void Scan(ClientContext &context, TableFunctionInput &data, DataChunk &output);

private:
	//! Fill `output` from the next remote chunk; false at the end.
	bool FillNext(ClientContext &context, DataChunk &output);

	OpenDuckChunkReader reader;
	unique_ptr<Expression> local_filter;
	unique_ptr<ExpressionExecutor> filter_executor;
	DataChunk remote_chunk;
	vector<idx_t> remote_column;
	mutex lock;
};

} // namespace duckdb
