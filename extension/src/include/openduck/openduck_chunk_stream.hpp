//===----------------------------------------------------------------------===//
// OpenDuckChunkStream: exports the rows of a ColumnDataCollection as an Arrow
// C stream (columns named c0, c1, ...; batches of up to BATCH_ROWS rows),
// which the Rust client sends to the server for ingest.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/common/arrow/arrow.hpp"
#include "duckdb/common/types/column/column_data_collection.hpp"

namespace duckdb {

class OpenDuckChunkStream {
public:
	static constexpr idx_t BATCH_ROWS = 122880;

	//! Fill `out`; `collection` must outlive the stream.
	static void Export(ClientContext &context, ColumnDataCollection &collection, ArrowArrayStream &out);
};

} // namespace duckdb
