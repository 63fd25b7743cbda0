//===----------------------------------------------------------------------===//
// OpenDuckChunkReader: turns a remote result (an Arrow C stream whose batches
// are fetched lazily from the server) into DuckDB DataChunks, using DuckDB's
// own Arrow conversion. The column types are those of the Arrow schema.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/common/arrow/arrow_wrapper.hpp"
#include "duckdb/function/table/arrow.hpp"

namespace duckdb {

class OpenDuckChunkReader {
public:
	OpenDuckChunkReader(ClientContext &context, unique_ptr<ArrowArrayStreamWrapper> stream);

	const vector<LogicalType> &Types() const {
		return types;
	}
	const vector<string> &Names() const {
		return names;
	}
	//! Fill `output` (initialized with Types()) with the next rows; false at the end.
	bool Next(DataChunk &output);

private:
	[[noreturn]] void Fail(const char *what);

	ClientContext &context;
	unique_ptr<ArrowArrayStreamWrapper> stream;
	ArrowSchemaWrapper schema;
	ArrowTableSchema arrow_table;
	vector<LogicalType> types;
	vector<string> names;
	unique_ptr<ArrowScanLocalState> state;
	bool done = false;
};

} // namespace duckdb
