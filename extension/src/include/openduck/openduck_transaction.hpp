//===----------------------------------------------------------------------===//
// OpenDuckTransaction: one DuckDB transaction's view of the remote database.
//
// In autocommit mode every statement runs on the server on its own (one
// round trip, committed when it returns). In BEGIN ... COMMIT, and for an
// autocommit statement that needs several remote requests to be atomic (an
// UPDATE/DELETE planned locally: scan row ids, then apply), the statements
// run in one server-side transaction: it is opened by the first request
// (txn.start), every request names it, and COMMIT/ROLLBACK here commit or
// roll it back on the server. Reads inside it see its own writes and one
// consistent state; write conflicts surface as TransactionException.
//
// The catalog comes from the attachment's cache (OpenDuckCatalog), unless
// this transaction changed the remote schema itself: then it is read
// through the server-side transaction.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/common/arrow/arrow_wrapper.hpp"
#include "duckdb/transaction/transaction.hpp"
#include "openduck_client.h"

namespace duckdb {

class OpenDuckCatalog;
class OpenDuckSchemaSet;

class OpenDuckTransaction : public Transaction {
public:
	OpenDuckTransaction(OpenDuckCatalog &catalog, TransactionManager &manager, ClientContext &context);
	~OpenDuckTransaction() override;

	static OpenDuckTransaction &Get(ClientContext &context, Catalog &catalog);

	OpenDuckSchemaSet &GetSchemas(ClientContext &context);
	//! After a lookup missed: reload the catalog once per transaction (another client may have created the
	//! table since it was cached). Returns the new schemas, or nullptr if there was nothing to reload.
	optional_ptr<OpenDuckSchemaSet> RefreshAfterMiss(ClientContext &context);
	//! The snapshot reads use: the attached snapshot, else -1 (the latest state).
	int64_t ReadSnapshot() const;
	//! Run every remote request of this transaction in one server-side transaction, even in autocommit mode.
	void RequireRemoteTransaction();

	//! Remote calls on behalf of this transaction (in its server-side transaction when it has one).
	unique_ptr<ArrowArrayStreamWrapper> Query(ClientContext &context, const string &sql, openduck_result &result);
	openduck_result Execute(ClientContext &context, const string &sql);
	openduck_result ExecuteIngest(ClientContext &context, const string &sql, const string &table,
	                              ArrowArrayStream &input);
	//! A statement of this transaction changed the remote schema (CREATE, DROP, ...).
	void ChangedCatalog();

	//! End the server-side transaction, if one was opened.
	ErrorData CommitRemote();
	void RollbackRemote();

private:
	//! The server-side transaction to run in (nullptr: autocommit); opened lazily.
	const openduck_txn *Txn(ClientContext &context);
	//! A request in the server-side transaction succeeded: it exists on the server.
	void Succeeded(const openduck_txn *txn, const openduck_result &result);

	OpenDuckCatalog &catalog;
	mutex lock;
	shared_ptr<OpenDuckSchemaSet> schemas;
	bool refreshed = false;
	bool changed_catalog = false;
	bool force_remote = false;
	string txn_id;
	openduck_txn txn {nullptr, 0};
};

} // namespace duckdb
