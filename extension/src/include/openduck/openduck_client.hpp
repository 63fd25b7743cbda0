//===----------------------------------------------------------------------===//
// OpenDuckClient: the C++ face of the Rust gRPC client (openduck_client.h).
// One per attached database; shared by every thread that uses it. Failures
// are thrown as DuckDB exceptions whose messages name the fix.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/common/arrow/arrow_wrapper.hpp"
#include "openduck_client.h"

namespace duckdb {

class OpenDuckClient {
public:
	//! Installed once by the extension's init function.
	static void SetApi(const openduck_client_api *api);

	//! Connect to `endpoint` for `database` (throws if the server is unreachable).
	static shared_ptr<OpenDuckClient> Connect(const string &endpoint, const string &token, const string &database);

	~OpenDuckClient();
	OpenDuckClient(const OpenDuckClient &) = delete;
	OpenDuckClient &operator=(const OpenDuckClient &) = delete;

	//! Start `sql` on `snapshot` (-1: latest) in the server-side transaction `txn` (nullptr: autocommit); a
	//! small result came with the answer, a larger one streams lazily.
	unique_ptr<ArrowArrayStreamWrapper> Query(const string &sql, int64_t snapshot, const openduck_txn *txn,
	                                          openduck_result &result) const;
	//! Like Query, but returns the error code (0: ok) and message instead of throwing.
	int32_t TryQuery(const string &sql, int64_t snapshot, const openduck_txn *txn, openduck_result &result,
	                 unique_ptr<ArrowArrayStreamWrapper> &stream, string &message) const;
	//! Run `sql` and discard its rows.
	openduck_result Execute(const string &sql, const openduck_txn *txn) const;
	//! Like Execute, but returns the error code (0: ok) and message instead of throwing.
	int32_t TryExecute(const string &sql, const openduck_txn *txn, openduck_result &result, string &message) const;
	//! Run `sql` with the rows of `input` readable as `table` (takes ownership of `input`).
	openduck_result ExecuteIngest(const string &sql, const string &table, ArrowArrayStream &input,
	                              const openduck_txn *txn) const;
	//! A new random id for a server-side transaction.
	static string NewTransactionId();
	//! Bytes moved so far over this attachment's connection.
	openduck_stats Stats() const;

	const string &Endpoint() const {
		return endpoint;
	}
	const string &Database() const {
		return database;
	}

	//! Throw the DuckDB exception matching an error code of openduck_client.h.
	[[noreturn]] static void ThrowError(int32_t code, const string &message);
	//! Throw for an error that ended a result stream (a remote SQL error keeps its type).
	[[noreturn]] static void ThrowStreamError(const string &what, string message);

private:
	OpenDuckClient(openduck_session *session, string endpoint, string database);
	openduck_session *session;
	string endpoint;
	string database;
};

} // namespace duckdb
