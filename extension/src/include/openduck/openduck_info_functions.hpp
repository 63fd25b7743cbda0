//===----------------------------------------------------------------------===//
// Table functions about an attachment:
//   openduck_snapshots('<attachment>') - the remote database's snapshots
//     (id, parent, created_at, size, stored_bytes, pinned), oldest first: a
//     pushed-down query of the server's openduck_snapshots();
//   openduck_stats('<attachment>') - what this client moved over the wire
//     for it so far (requests, bytes_sent, bytes_received: SQL and Arrow IPC
//     payload bytes).
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/function/table_function.hpp"

namespace duckdb {

class OpenDuckInfoFunctions {
public:
	static TableFunction Snapshots();
	static TableFunction Stats();
};

} // namespace duckdb
