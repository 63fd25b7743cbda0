#include "openduck/openduck_info_functions.hpp"

#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_query_function.hpp"

namespace duckdb {

static string AttachmentArgument(TableFunctionBindInput &input, const char *function) {
	if (input.inputs.size() != 1 || input.inputs[0].IsNull()) {
		throw BinderException("%s('<attached OpenDuck database>') needs the attachment's name", function);
	}
	return StringValue::Get(input.inputs[0]);
}

static unique_ptr<TableRef> SnapshotsBindReplace(ClientContext &context, TableFunctionBindInput &input) {
	auto name = AttachmentArgument(input, "openduck_snapshots");
	OpenDuckCatalog::Find(context, name, "openduck_snapshots");
	return OpenDuckQueryFunction::Ref(name, "SELECT * FROM openduck_snapshots() ORDER BY id", false);
}

TableFunction OpenDuckInfoFunctions::Snapshots() {
	TableFunction function("openduck_snapshots", {LogicalType::VARCHAR}, nullptr, nullptr);
	function.bind_replace = SnapshotsBindReplace;
	return function;
}

struct OpenDuckStatsBindData : public TableFunctionData {
	explicit OpenDuckStatsBindData(OpenDuckCatalog &catalog) : catalog(catalog) {
	}
	OpenDuckCatalog &catalog;
};

struct OpenDuckStatsState : public GlobalTableFunctionState {
	bool done = false;
};

static unique_ptr<FunctionData> StatsBind(ClientContext &context, TableFunctionBindInput &input,
                                          vector<LogicalType> &return_types, vector<Identifier> &names) {
	auto &catalog = OpenDuckCatalog::Find(context, AttachmentArgument(input, "openduck_stats"), "openduck_stats");
	for (auto name : {"requests", "bytes_sent", "bytes_received"}) {
		names.emplace_back(name);
		return_types.push_back(LogicalType::UBIGINT);
	}
	return make_uniq<OpenDuckStatsBindData>(catalog);
}

static unique_ptr<GlobalTableFunctionState> StatsInit(ClientContext &context, TableFunctionInitInput &input) {
	return make_uniq<OpenDuckStatsState>();
}

static void StatsScan(ClientContext &context, TableFunctionInput &data, DataChunk &output) {
	auto &state = data.global_state->Cast<OpenDuckStatsState>();
	if (state.done) {
		output.SetChildCardinality(0);
		return;
	}
	state.done = true;
	auto stats = data.bind_data->Cast<OpenDuckStatsBindData>().catalog.GetClient().Stats();
	output.SetChildCardinality(1);
	output.data[0].Reference(Value::UBIGINT(stats.requests), count_t(1));
	output.data[1].Reference(Value::UBIGINT(stats.bytes_sent), count_t(1));
	output.data[2].Reference(Value::UBIGINT(stats.bytes_received), count_t(1));
}

TableFunction OpenDuckInfoFunctions::Stats() {
	return TableFunction("openduck_stats", {LogicalType::VARCHAR}, StatsScan, StatsBind, StatsInit);
}

} // namespace duckdb
