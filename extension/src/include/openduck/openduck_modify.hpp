//===----------------------------------------------------------------------===//
// OpenDuckModify: an UPDATE or DELETE on a remote table that cannot run on
// the server as a whole (e.g. it joins local tables). The scan of the remote
// table fetched each row's remote rowid; the rowids (and, for UPDATE, the
// new values) go up (OpenDuckUpload) with one statement that applies them by
// rowid, conditional on the snapshot the scan read: if anyone wrote in
// between, the server refuses (ABORTED) and nothing changes, so rowids never
// hit the wrong rows.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "openduck/openduck_upload.hpp"

namespace duckdb {

class LogicalDelete;
class LogicalUpdate;

class OpenDuckModify : public OpenDuckUpload {
public:
	OpenDuckModify(PhysicalPlan &plan, LogicalDelete &op, OpenDuckCatalog &catalog);
	OpenDuckModify(PhysicalPlan &plan, LogicalUpdate &op, OpenDuckCatalog &catalog, const vector<LogicalType> &input);
};

} // namespace duckdb
