#include "openduck/openduck_scan.hpp"

#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_filter_sql.hpp"
#include "openduck/openduck_remote_result.hpp"
#include "openduck/openduck_sql.hpp"
#include "openduck/openduck_table_entry.hpp"

namespace duckdb {

unique_ptr<FunctionData> OpenDuckScan::Bind(OpenDuckTableEntry &table) {
	auto result = make_uniq<OpenDuckScanBindData>(table.ParentCatalog().Cast<OpenDuckCatalog>());
	result->remote_schema = table.RemoteSchema();
	result->remote_table = table.RemoteName();
	for (auto &column : table.GetColumns().Logical()) {
		result->names.push_back(column.Name().GetIdentifierName());
		result->types.push_back(column.Type());
	}
	result->cardinality = table.Cardinality();
	return std::move(result);
}

string OpenDuckScan::RemoteSql(const OpenDuckScanBindData &bind, const vector<column_t> &column_ids) {
	string select;
	for (auto column_id : column_ids) {
		if (column_id >= bind.names.size()) {
			continue; // virtual column (rowid, count(*)): filled locally
		}
		select += select.empty() ? "" : ", ";
		auto column = OpenDuckSql::Quote(bind.names[column_id]);
		// sent as text where Arrow cannot carry the type; cast back to it locally (OpenDuckRemoteResult)
		select += OpenDuckSql::NeedsText(bind.types[column_id]) ? "CAST(" + column + " AS VARCHAR)" : column;
	}
	if (select.empty()) {
		// Only the row count matters (e.g. count(*)): send the cheapest column there is.
		select = "NULL::BOOLEAN AS __openduck_row";
	}
	auto sql = "SELECT " + select + " FROM " + OpenDuckSql::Table(bind.remote_schema, bind.remote_table);
	for (idx_t i = 0; i < bind.filters.size(); i++) {
		sql += (i == 0 ? " WHERE " : " AND ") + bind.filters[i];
	}
	return sql;
}

//! Hand DuckDB's filters on this scan to the server where their meaning is certain to be the same.
static void PushdownComplexFilter(ClientContext &context, LogicalGet &get, FunctionData *bind_data,
                                  vector<unique_ptr<Expression>> &filters) {
	auto &bind = bind_data->Cast<OpenDuckScanBindData>();
	OpenDuckFilterSql translator(get, bind.names);
	for (idx_t i = 0; i < filters.size(); i++) {
		string sql;
		if (translator.TryTranslate(*filters[i], sql)) {
			bind.filters.push_back(std::move(sql));
			filters.erase_at(i);
			i--;
		}
	}
}

static unique_ptr<GlobalTableFunctionState> InitGlobal(ClientContext &context, TableFunctionInitInput &input) {
	auto &bind = input.bind_data->Cast<OpenDuckScanBindData>();
	auto sql = OpenDuckScan::RemoteSql(bind, input.column_ids);
	openduck_result result {0, 0, 0};
	auto stream = bind.catalog.GetClient().Query(sql, bind.catalog.ReadSnapshot(context), result);
	vector<idx_t> remote_column;
	idx_t next_remote = 0;
	for (auto column_id : input.column_ids) {
		remote_column.push_back(column_id < bind.names.size() ? next_remote++ : DConstants::INVALID_INDEX);
	}
	return make_uniq<OpenDuckRemoteResult>(context, std::move(stream), std::move(remote_column));
}

static unique_ptr<NodeStatistics> Cardinality(ClientContext &context, const FunctionData *bind_data) {
	auto &bind = bind_data->Cast<OpenDuckScanBindData>();
	if (!bind.cardinality.IsValid()) {
		return make_uniq<NodeStatistics>();
	}
	auto rows = bind.cardinality.GetIndex();
	return make_uniq<NodeStatistics>(rows, rows);
}

static InsertionOrderPreservingMap<string> ToString(TableFunctionToStringInput &input) {
	InsertionOrderPreservingMap<string> result;
	auto &bind = input.bind_data->Cast<OpenDuckScanBindData>();
	result["Table"] = bind.catalog.GetClient().Database() + "." + bind.remote_schema + "." + bind.remote_table;
	if (!bind.filters.empty()) {
		result["Remote Filters"] = StringUtil::Join(bind.filters, " AND ");
	}
	return result;
}

TableFunction OpenDuckScan::Function() {
	TableFunction function("openduck_scan", vector<LogicalType>(), OpenDuckRemoteResult::Scan, nullptr, InitGlobal);
	function.projection_pushdown = true;
	function.filter_pushdown = false;
	function.pushdown_complex_filter = PushdownComplexFilter;
	function.cardinality = Cardinality;
	function.to_string = ToString;
	return function;
}

} // namespace duckdb
