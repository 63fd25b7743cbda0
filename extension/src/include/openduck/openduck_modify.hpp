//===----------------------------------------------------------------------===//
// OpenDuckModify: an UPDATE or DELETE on a remote table that cannot run on
// the server as a whole (e.g. it joins local tables). The scan of the remote
// table fetched each row's remote rowid; the rowids (and, for UPDATE, the
// new values) go up (OpenDuckUpload) with one statement that applies them by
// rowid. The scan and the statement run in one server-side transaction
// (OpenDuckTransaction::RequireRemoteTransaction), so the rowids are those
// of the state the statement changes; a concurrent writer of the same rows
// makes it fail with a TransactionException and nothing changes.
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
