#include "openduck/openduck_scan.hpp"

#include "duckdb/planner/expression/bound_conjunction_expression.hpp"
#include "duckdb/planner/expression/bound_reference_expression.hpp"
#include "duckdb/planner/expression_iterator.hpp"
#include "duckdb/planner/filter/expression_filter.hpp"
#include "duckdb/planner/table_filter_set.hpp"

#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_filter_sql.hpp"
#include "openduck/openduck_remote_result.hpp"
#include "openduck/openduck_sql.hpp"
#include "openduck/openduck_table_entry.hpp"
#include "openduck/openduck_transaction.hpp"

namespace duckdb {

unique_ptr<FunctionData> OpenDuckScan::Bind(OpenDuckTableEntry &table) {
	auto result = make_uniq<OpenDuckScanBindData>(table.ParentCatalog().Cast<OpenDuckCatalog>());
	result->table = &table;
	result->remote_schema = table.RemoteSchema();
	result->remote_table = table.RemoteName();
	for (auto &column : table.GetColumns().Logical()) {
		result->names.push_back(column.Name().GetIdentifierName());
		result->types.push_back(column.Type());
	}
	result->cardinality = table.Cardinality();
	return std::move(result);
}

//! " FROM "schema"."table" [WHERE <filters>]" of a scan's remote SQL.
static string FromWhere(const OpenDuckScanBindData &bind, const vector<string> &run_time_filters) {
	auto sql = " FROM " + OpenDuckSql::Table(bind.remote_schema, bind.remote_table);
	idx_t count = 0;
	for (auto filters : {&bind.filters, &run_time_filters}) {
		for (auto &filter : *filters) {
			sql += (count++ == 0 ? " WHERE " : " AND ") + filter;
		}
	}
	return sql;
}

string OpenDuckScan::RemoteSql(const OpenDuckScanBindData &bind, const vector<column_t> &column_ids,
                               const vector<string> &run_time_filters) {
	string select;
	for (auto column_id : column_ids) {
		if (column_id == COLUMN_IDENTIFIER_ROW_ID) {
			// the remote rowid (UPDATE/DELETE plans apply their changes by it)
			select += select.empty() ? "rowid" : ", rowid";
			continue;
		}
		if (column_id >= bind.names.size()) {
			continue; // other virtual columns (e.g. for count(*)): filled locally
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
	return "SELECT " + select + FromWhere(bind, run_time_filters);
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

//! The filters DuckDB hands the scan at run time (from the plan, or derived by a join from its local side):
//! what the server can apply goes into `remote`, and all of them become one expression the scan applies
//! locally to the output columns (a remote condition only ever narrows what arrives).
static unique_ptr<Expression> RunTimeFilters(const OpenDuckScanBindData &bind, const TableFunctionInitInput &input,
                                             vector<string> &remote) {
	if (!input.filters) {
		return nullptr;
	}
	vector<unique_ptr<Expression>> local;
	for (auto &entry : *input.filters) {
		idx_t output_index = entry.GetIndex();
		auto column_id = input.column_ids[output_index];
		auto type = column_id < bind.types.size() ? bind.types[column_id] : LogicalType(LogicalType::ROW_TYPE);
		local.push_back(entry.Filter().ToExpression(BoundReferenceExpression(type, output_index)));
		if (column_id < bind.names.size()) {
			string sql;
			auto on_column = ExpressionFilter::FromTableFilter(entry.Filter(), type);
			if (OpenDuckFilterSql(bind.names[column_id]).TryTranslateImplied(*on_column->expr, sql)) {
				remote.push_back(std::move(sql));
			}
		}
	}
	for (auto &filter : input.filters->GetMultiColumnFilters()) {
		// its #i stands for scan column column_indexes[i]: the same position in the output
		auto &multi = filter->Cast<ExpressionFilter>();
		auto expr = multi.expr->Copy();
		ExpressionIterator::VisitExpressionMutable<BoundReferenceExpression>(
		    expr, [&](BoundReferenceExpression &ref, unique_ptr<Expression> &) {
			    ref.IndexMutable() = multi.column_indexes[ref.Index()].GetIndex();
		    });
		local.push_back(std::move(expr));
	}
	if (local.empty()) {
		return nullptr;
	}
	if (local.size() == 1) {
		return std::move(local[0]);
	}
	auto all = make_uniq<BoundConjunctionExpression>(ExpressionType::CONJUNCTION_AND);
	for (auto &filter : local) {
		all->GetChildrenMutable().push_back(std::move(filter));
	}
	return std::move(all);
}

static unique_ptr<GlobalTableFunctionState> InitGlobal(ClientContext &context, TableFunctionInitInput &input) {
	auto &bind = input.bind_data->Cast<OpenDuckScanBindData>();
	vector<string> run_time_remote;
	auto local_filter = RunTimeFilters(bind, input, run_time_remote);
	auto sql = OpenDuckScan::RemoteSql(bind, input.column_ids, run_time_remote);
	openduck_result result {0, 0, 0, 0};
	auto stream = OpenDuckTransaction::Get(context, bind.catalog).Query(context, sql, result);
	vector<idx_t> remote_column;
	idx_t next_remote = 0;
	for (auto column_id : input.column_ids) {
		bool remote = column_id < bind.names.size() || column_id == COLUMN_IDENTIFIER_ROW_ID;
		remote_column.push_back(remote ? next_remote++ : DConstants::INVALID_INDEX);
	}
	auto state = make_uniq<OpenDuckRemoteResult>(context, std::move(stream), std::move(remote_column));
	if (local_filter) {
		state->SetLocalFilter(context, std::move(local_filter));
	}
	return std::move(state);
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
	result["Runs On"] = "OpenDuck server " + bind.catalog.GetClient().Endpoint();
	if (!bind.filters.empty()) {
		result["Remote Filters"] = StringUtil::Join(bind.filters, " AND ");
	}
	// The projected columns (and run-time filters) are only known when the scan starts; DuckDB prints the
	// columns below as "Projections".
	result["Remote SQL"] = "SELECT <Projections>" + FromWhere(bind, {});
	return result;
}

static optional_ptr<TableCatalogEntry> TableEntry(optional_ptr<const FunctionData> bind_data) {
	return bind_data ? bind_data->Cast<OpenDuckScanBindData>().table : nullptr;
}

TableFunction OpenDuckScan::Function() {
	TableFunction function("openduck_scan", vector<LogicalType>(), OpenDuckRemoteResult::Scan, nullptr, InitGlobal);
	function.projection_pushdown = true;
	// Run-time filters (e.g. a hash join's min/max and IN list of its local keys) reach InitGlobal; the
	// scan applies them itself and sends the server what it can (RunTimeFilters).
	function.filter_pushdown = true;
	function.pushdown_complex_filter = PushdownComplexFilter;
	function.cardinality = Cardinality;
	function.to_string = ToString;
	function.get_table_entry = TableEntry;
	return function;
}

} // namespace duckdb
