#include "openduck/openduck_query_function.hpp"

#include "duckdb/parser/expression/constant_expression.hpp"
#include "duckdb/parser/expression/function_expression.hpp"
#include "duckdb/parser/tableref/table_function_ref.hpp"
#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_remote_result.hpp"
#include "openduck/openduck_sql.hpp"
#include "openduck/openduck_transaction.hpp"

namespace duckdb {

static constexpr const char *FUNCTION_NAME = "openduck_query";

struct OpenDuckQueryBindData : public TableFunctionData {
	OpenDuckQueryBindData(OpenDuckCatalog &catalog, string sql, bool is_write)
	    : catalog(catalog), sql(std::move(sql)), is_write(is_write) {
	}

	OpenDuckCatalog &catalog;
	string sql;
	bool is_write;
	//! Result types (reads), as the server described them.
	vector<LogicalType> types;

	unique_ptr<FunctionData> Copy() const override {
		auto copy = make_uniq<OpenDuckQueryBindData>(catalog, sql, is_write);
		copy->types = types;
		return std::move(copy);
	}
	bool Equals(const FunctionData &other_p) const override {
		// two writes are never the same operation (each must run)
		auto &other = other_p.Cast<OpenDuckQueryBindData>();
		return !is_write && !other.is_write && &catalog == &other.catalog && sql == other.sql;
	}
};

//! A write's result: its row count, once.
struct OpenDuckWriteState : public GlobalTableFunctionState {
	int64_t rows_affected = 0;
	bool returned = false;
};

//! The result names and types of `sql`, from a DESCRIBE on the server (cached per catalog version: a
//! statement run again needs no DESCRIBE).
static void DescribeRemote(ClientContext &context, OpenDuckCatalog &catalog, const string &sql,
                           vector<LogicalType> &types, vector<Identifier> &names) {
	if (catalog.CachedDescribe(sql, types, names)) {
		return;
	}
	openduck_result result {0, 0, 0, 0};
	auto stream = OpenDuckTransaction::Get(context, catalog).Query(context, "DESCRIBE " + sql, result);
	OpenDuckChunkReader reader(context, std::move(stream));
	DataChunk chunk;
	chunk.Initialize(context, reader.Types());
	while (reader.Next(chunk)) {
		for (idx_t row = 0; row < chunk.size(); row++) {
			names.emplace_back(chunk.GetValue(0, row).ToString());
			auto type_name = chunk.GetValue(1, row).ToString();
			try {
				types.push_back(TransformStringToLogicalType(type_name, context));
			} catch (std::exception &) {
				types.push_back(LogicalType::VARCHAR);
			}
		}
	}
	if (types.empty()) {
		throw BinderException("%s: the server described no result columns for: %s", FUNCTION_NAME, sql);
	}
	catalog.CacheDescribe(sql, result.catalog_version, types, names);
}

static unique_ptr<FunctionData> Bind(ClientContext &context, TableFunctionBindInput &input,
                                     vector<LogicalType> &return_types, vector<Identifier> &names) {
	if (input.inputs.size() != 2 || input.inputs[0].IsNull() || input.inputs[1].IsNull()) {
		throw BinderException("%s(<attached database>, <sql>) needs both arguments", FUNCTION_NAME);
	}
	auto &catalog = OpenDuckCatalog::Find(context, StringValue::Get(input.inputs[0]), FUNCTION_NAME);
	auto sql = StringValue::Get(input.inputs[1]);
	bool is_write = false;
	for (auto &param : input.named_parameters) {
		if (param.first == "write") {
			is_write = !param.second.IsNull() && BooleanValue::Get(param.second);
		}
	}
	if (is_write) {
		catalog.CheckWritable(context, "write");
		return_types.push_back(LogicalType::BIGINT);
		names.emplace_back("Count");
	} else {
		DescribeRemote(context, catalog, sql, return_types, names);
	}
	auto result = make_uniq<OpenDuckQueryBindData>(catalog, std::move(sql), is_write);
	result->types = return_types;
	return std::move(result);
}

//! The query as sent for the result columns `column_ids` (all of them when null): only those columns (by
//! position), and those Arrow cannot carry as text (cast back locally). The query itself is sent unchanged
//! when it already yields exactly that.
static string RemoteSql(const OpenDuckQueryBindData &bind, optional_ptr<const vector<column_t>> column_ids) {
	vector<column_t> all;
	for (idx_t i = 0; i < bind.types.size(); i++) {
		all.push_back(i);
	}
	auto &wanted = column_ids ? *column_ids : all;
	bool as_is = true;
	string select;
	idx_t position = 0;
	for (auto column_id : wanted) {
		if (column_id >= bind.types.size()) {
			as_is = false; // a virtual column (e.g. for count(*)): filled locally
			continue;
		}
		auto column = "#" + std::to_string(column_id + 1);
		auto text = OpenDuckSql::NeedsText(bind.types[column_id]);
		as_is = as_is && !text && column_id == position++;
		select += (select.empty() ? "" : ", ") + (text ? "CAST(" + column + " AS VARCHAR)" : column);
	}
	if (as_is && position == bind.types.size()) {
		return bind.sql;
	}
	if (select.empty()) {
		select = "NULL::BOOLEAN AS __openduck_row"; // only the row count matters
	}
	return "SELECT " + select + " FROM (" + bind.sql + ") AS __openduck_query";
}

static unique_ptr<GlobalTableFunctionState> InitGlobal(ClientContext &context, TableFunctionInitInput &input) {
	auto &bind = input.bind_data->Cast<OpenDuckQueryBindData>();
	if (bind.is_write) {
		auto state = make_uniq<OpenDuckWriteState>();
		state->rows_affected = OpenDuckTransaction::Get(context, bind.catalog).Execute(context, bind.sql).rows_affected;
		return std::move(state);
	}
	openduck_result result {0, 0, 0, 0};
	auto sql = RemoteSql(bind, &input.column_ids);
	auto stream = OpenDuckTransaction::Get(context, bind.catalog).Query(context, sql, result);
	// The remote result holds the requested real columns, in order.
	vector<idx_t> remote_column;
	idx_t next_remote = 0;
	for (auto column_id : input.column_ids) {
		remote_column.push_back(column_id < bind.types.size() ? next_remote++ : DConstants::INVALID_INDEX);
	}
	return make_uniq<OpenDuckRemoteResult>(context, std::move(stream), std::move(remote_column));
}

static void Scan(ClientContext &context, TableFunctionInput &data, DataChunk &output) {
	auto &bind = data.bind_data->Cast<OpenDuckQueryBindData>();
	if (!bind.is_write) {
		OpenDuckRemoteResult::Scan(context, data, output);
		return;
	}
	auto &state = data.global_state->Cast<OpenDuckWriteState>();
	if (state.returned) {
		output.SetChildCardinality(0);
		return;
	}
	state.returned = true;
	output.SetChildCardinality(1);
	for (auto &column : output.data) {
		column.Reference(Value::BIGINT(state.rows_affected).DefaultCastAs(column.GetType()), count_t(1));
	}
}

static InsertionOrderPreservingMap<string> ToString(TableFunctionToStringInput &input) {
	InsertionOrderPreservingMap<string> result;
	auto &bind = input.bind_data->Cast<OpenDuckQueryBindData>();
	result["Database"] = bind.catalog.GetName().GetIdentifierName();
	result["Runs On"] = "OpenDuck server " + bind.catalog.GetClient().Endpoint();
	result["Remote SQL"] = RemoteSql(bind, nullptr);
	return result;
}

TableFunction OpenDuckQueryFunction::Function() {
	TableFunction function(FUNCTION_NAME, {LogicalType::VARCHAR, LogicalType::VARCHAR}, Scan, Bind, InitGlobal);
	function.GetSignature().AddKeywordOnly("write", LogicalType::BOOLEAN, Value::BOOLEAN(false));
	function.to_string = ToString;
	// Only the columns the query uses are fetched (RemoteSql).
	function.projection_pushdown = true;
	return function;
}

unique_ptr<TableRef> OpenDuckQueryFunction::Ref(const string &catalog, const string &sql, bool is_write) {
	vector<unique_ptr<ParsedExpression>> args;
	args.push_back(make_uniq<ConstantExpression>(Literal::String(catalog)));
	args.push_back(make_uniq<ConstantExpression>(Literal::String(sql)));
	if (is_write) {
		auto write = make_uniq<ConstantExpression>(Literal::Boolean(true));
		write->SetAlias(Identifier("write"));
		args.push_back(std::move(write));
	}
	auto ref = make_uniq<TableFunctionRef>();
	ref->function = make_uniq<FunctionExpression>(Identifier(FUNCTION_NAME), std::move(args));
	return std::move(ref);
}

} // namespace duckdb
