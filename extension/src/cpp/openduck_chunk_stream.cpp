#include "openduck/openduck_chunk_stream.hpp"

#include "duckdb/common/arrow/arrow_appender.hpp"
#include "duckdb/common/arrow/arrow_converter.hpp"
#include "duckdb/function/table/arrow/arrow_duck_schema.hpp"
#include "openduck/openduck_sql.hpp"

#include <cerrno>

namespace duckdb {

namespace {

struct StreamState {
	StreamState(ClientContext &context, ColumnDataCollection &collection_p)
	    : collection(collection_p), extension_types(ArrowTypeExtensionData::GetExtensionTypes(context, collection_p.Types())) {
		// The plainest Arrow encoding (regular offsets, no views), whatever the session's arrow settings:
		// it is what the server's ingest reads.
		properties.client_context = &context;
		properties.time_zone = context.GetClientProperties().time_zone;
		collection.InitializeScan(scan);
		collection.InitializeScanChunk(scan, chunk);
		for (idx_t i = 0; i < collection.ColumnCount(); i++) {
			names.push_back(OpenDuckSql::IngestColumn(i));
		}
	}

	ColumnDataCollection &collection;
	ColumnDataScanState scan;
	DataChunk chunk;
	//! Rows of `chunk` already appended to a batch.
	idx_t chunk_offset = 0;
	bool chunk_valid = false;
	ClientProperties properties;
	unordered_map<idx_t, const shared_ptr<ArrowTypeExtensionData>> extension_types;
	vector<string> names;
	string error;
};

StreamState &State(ArrowArrayStream *stream) {
	return *reinterpret_cast<StreamState *>(stream->private_data);
}

int GetSchema(ArrowArrayStream *stream, ArrowSchema *out) {
	auto &state = State(stream);
	try {
		ArrowConverter::ToArrowSchema(out, state.collection.Types(), state.names, state.properties);
		return 0;
	} catch (std::exception &e) {
		state.error = ErrorData(e).Message();
		return EIO;
	}
}

int GetNext(ArrowArrayStream *stream, ArrowArray *out) {
	auto &state = State(stream);
	try {
		out->release = nullptr;
		ArrowAppender appender(state.collection.Types(), OpenDuckChunkStream::BATCH_ROWS, state.properties,
		                       state.extension_types);
		while (appender.RowCount() < OpenDuckChunkStream::BATCH_ROWS) {
			if (!state.chunk_valid || state.chunk_offset >= state.chunk.size()) {
				state.chunk_valid = state.collection.Scan(state.scan, state.chunk);
				state.chunk_offset = 0;
				if (!state.chunk_valid) {
					break;
				}
				continue;
			}
			auto take = MinValue(state.chunk.size() - state.chunk_offset,
			                     OpenDuckChunkStream::BATCH_ROWS - appender.RowCount());
			appender.Append(state.chunk, state.chunk_offset, state.chunk_offset + take, state.chunk.size());
			state.chunk_offset += take;
		}
		if (appender.RowCount() > 0) {
			*out = appender.Finalize();
		}
		return 0;
	} catch (std::exception &e) {
		state.error = ErrorData(e).Message();
		return EIO;
	}
}

const char *GetLastError(ArrowArrayStream *stream) {
	return State(stream).error.c_str();
}

void Release(ArrowArrayStream *stream) {
	if (!stream->release) {
		return;
	}
	delete reinterpret_cast<StreamState *>(stream->private_data);
	stream->private_data = nullptr;
	stream->release = nullptr;
}

} // namespace

void OpenDuckChunkStream::Export(ClientContext &context, ColumnDataCollection &collection, ArrowArrayStream &out) {
	out.private_data = new StreamState(context, collection);
	out.get_schema = GetSchema;
	out.get_next = GetNext;
	out.get_last_error = GetLastError;
	out.release = Release;
}

} // namespace duckdb
