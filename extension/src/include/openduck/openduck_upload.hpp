//===----------------------------------------------------------------------===//
// OpenDuckUpload: what every remote write planned locally shares. As a sink
// it collects chosen input columns (spillable; values Arrow cannot carry are
// cast to text), then runs one statement on the server that reads them as
// OpenDuckSql::INGEST_TABLE while they stream up as Arrow. As a source it
// returns the server's row count. OpenDuckInsert and OpenDuckModify say
// which columns go up and what the statement is.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/execution/physical_operator.hpp"

namespace duckdb {

class OpenDuckCatalog;

class OpenDuckUpload : public PhysicalOperator {
public:
	OpenDuckUpload(PhysicalPlan &plan, LogicalOperator &op, OpenDuckCatalog &catalog, string name);

	string GetName() const override {
		return name;
	}
	InsertionOrderPreservingMap<string> ParamsToString() const override;

	bool IsSource() const override {
		return true;
	}
	unique_ptr<GlobalSinkState> GetGlobalSinkState(ClientContext &context) const override;
	SinkResultType Sink(ExecutionContext &context, DataChunk &chunk, OperatorSinkInput &input) const override;
	SinkFinalizeType Finalize(Pipeline &pipeline, Event &event, ClientContext &context,
	                          OperatorSinkFinalizeInput &input) const override;
	bool IsSink() const override {
		return true;
	}
	//! One thread, so the rows keep their order (DuckDB preserves insertion order).
	bool ParallelSink() const override {
		return false;
	}
	bool SinkOrderDependent() const override {
		return true;
	}

protected:
	SourceResultType GetDataInternal(ExecutionContext &context, DataChunk &chunk,
	                                 OperatorSourceInput &input) const override;

	//! Send input column `index` (of type `type`) up as the next ingest column.
	void SendColumn(idx_t index, const LogicalType &type);

	OpenDuckCatalog &catalog;
	//! "schema"."table" (for EXPLAIN)
	string target;
	//! The statement run on the server, reading the sent columns from OpenDuckSql::INGEST_TABLE.
	string remote_sql;
	//! Run the statement even when no rows arrived (CREATE TABLE AS must create the table).
	bool run_when_empty = true;
	//! The statement creates a table (CREATE TABLE AS): later lookups must see it.
	bool creates_table = false;

private:
	string name;
	vector<idx_t> sent_columns;
	vector<LogicalType> wire_types;
};

} // namespace duckdb
