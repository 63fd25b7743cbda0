//===----------------------------------------------------------------------===//
// OpenDuckModify: the sink of an UPDATE or DELETE on a remote table that
// cannot run on the server as a whole (e.g. it joins local tables). The scan
// of the remote table fetched each row's remote rowid; this operator collects
// the rowids (and, for UPDATE, the new values), sends them up as Arrow with
// one statement that applies them by rowid, and makes that write conditional
// on the snapshot the scan read: if anyone wrote in between, the server
// refuses (ABORTED) and nothing changes, so rowids never hit the wrong rows.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/execution/physical_operator.hpp"

namespace duckdb {

class OpenDuckCatalog;
class LogicalDelete;
class LogicalUpdate;

class OpenDuckModify : public PhysicalOperator {
public:
	OpenDuckModify(PhysicalPlan &plan, LogicalDelete &op, OpenDuckCatalog &catalog);
	OpenDuckModify(PhysicalPlan &plan, LogicalUpdate &op, OpenDuckCatalog &catalog, const vector<LogicalType> &input);

	string GetName() const override {
		return is_update ? "OPENDUCK_UPDATE" : "OPENDUCK_DELETE";
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
	bool ParallelSink() const override {
		return false;
	}

protected:
	SourceResultType GetDataInternal(ExecutionContext &context, DataChunk &chunk,
	                                 OperatorSourceInput &input) const override;

private:
	OpenDuckCatalog &catalog;
	bool is_update;
	//! "schema"."table"
	string target;
	//! The statement run on the server, reading OpenDuckSql::INGEST_TABLE (c0: rowid, c1..: new values).
	string remote_sql;
	//! Input columns sent up, in order (the rowid first).
	vector<idx_t> sent_columns;
	//! Their types on the wire.
	vector<LogicalType> wire_types;
};

} // namespace duckdb
