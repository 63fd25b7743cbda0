//===----------------------------------------------------------------------===//
// OpenDuckInsert: the sink of `INSERT INTO <remote> ...` and
// `CREATE TABLE <remote> AS ...`. It collects the local rows (spillable),
// then sends them to the server as Arrow in one Execute, with a statement
// that casts them to the table's exact types. Returns the row count.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/execution/physical_operator.hpp"
#include "duckdb/planner/parsed_data/bound_create_table_info.hpp"

namespace duckdb {

class OpenDuckCatalog;

class OpenDuckInsert : public PhysicalOperator {
public:
	//! INSERT INTO an existing remote table (input: every column, in table order).
	OpenDuckInsert(PhysicalPlan &plan, LogicalOperator &op, OpenDuckCatalog &catalog, TableCatalogEntry &table);
	//! CREATE TABLE ... AS SELECT
	OpenDuckInsert(PhysicalPlan &plan, LogicalOperator &op, OpenDuckCatalog &catalog, SchemaCatalogEntry &schema,
	               unique_ptr<BoundCreateTableInfo> info);

	string GetName() const override {
		return "OPENDUCK_INSERT";
	}
	InsertionOrderPreservingMap<string> ParamsToString() const override;

	// Source: the row count
	bool IsSource() const override {
		return true;
	}

	// Sink: collect the rows, send them in Finalize
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

private:
	void SetWireTypes();

	OpenDuckCatalog &catalog;
	//! The statement run on the server, reading the rows as OpenDuckSql::INGEST_TABLE.
	string remote_sql;
	//! "schema.table" (for EXPLAIN)
	string target;
	vector<LogicalType> input_types;
	//! The types the rows are sent as (OpenDuckSql::WireType of input_types).
	vector<LogicalType> wire_types;
	bool needs_cast = false;
};

} // namespace duckdb
