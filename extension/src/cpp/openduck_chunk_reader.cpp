#include "openduck/openduck_chunk_reader.hpp"

#include "openduck/openduck_client.hpp"

namespace duckdb {

OpenDuckChunkReader::OpenDuckChunkReader(ClientContext &context_p, unique_ptr<ArrowArrayStreamWrapper> stream_p)
    : context(context_p), stream(std::move(stream_p)) {
	auto &raw = stream->arrow_array_stream;
	if (raw.get_schema(&raw, &schema.arrow_schema) != 0 || !schema.arrow_schema.release) {
		Fail("reading the result schema");
	}
	ArrowTableFunction::PopulateArrowTableSchema(context, arrow_table, schema.arrow_schema);
	types = arrow_table.GetTypes();
	names = arrow_table.GetNames();
	state = make_uniq<ArrowScanLocalState>(make_uniq<ArrowArrayWrapper>(), context);
}

void OpenDuckChunkReader::Fail(const char *what) {
	auto &raw = stream->arrow_array_stream;
	auto error = raw.get_last_error ? raw.get_last_error(&raw) : nullptr;
	OpenDuckClient::ThrowStreamError(what, error ? string(error) : string("unknown error"));
}

bool OpenDuckChunkReader::Next(DataChunk &output) {
	auto &raw = stream->arrow_array_stream;
	while (!done) {
		auto &current = state->chunk->arrow_array;
		if (current.release && state->chunk_offset < NumericCast<idx_t>(current.length)) {
			break;
		}
		auto next = make_shared_ptr<ArrowArrayWrapper>();
		if (raw.get_next(&raw, &next->arrow_array) != 0) {
			Fail("fetching rows");
		}
		if (!next->arrow_array.release) {
			done = true;
			break;
		}
		state->Reset();
		state->chunk = std::move(next);
	}
	if (done) {
		return false;
	}
	auto length = NumericCast<idx_t>(state->chunk->arrow_array.length);
	auto count = MinValue<idx_t>(STANDARD_VECTOR_SIZE, length - state->chunk_offset);
	output.Reset();
	output.SetChildCardinality(count);
	ArrowTableFunction::ArrowToDuckDB(*state, arrow_table.GetColumns(), output);
	state->chunk_offset += count;
	return true;
}

} // namespace duckdb
