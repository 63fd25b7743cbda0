//===----------------------------------------------------------------------===//
// OpenDuckAttachUrl: what `ATTACH 'openduck:<db>?endpoint=..&token=..&snapshot=..'`
// asks for. Every parameter is optional: the endpoint defaults to
// $OPENDUCK_ENDPOINT, else http://localhost:7878, the token to
// $OPENDUCK_TOKEN. ATTACH options (TOKEN, ENDPOINT, SNAPSHOT) may also set
// them; the ATTACH option PUSHDOWN (default true) turns query pushdown off. Anything else is refused with an error that shows the right form.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"

namespace duckdb {

class OpenDuckAttachUrl {
public:
	static constexpr const char *DEFAULT_ENDPOINT = "http://localhost:7878";

	//! Parse `path` (the ATTACH path with the `openduck:`/`od:` prefix removed)
	//! and the ATTACH options; consumes the options it understands.
	static OpenDuckAttachUrl Parse(const string &path, unordered_map<string, Value> &options);

	string database;
	string endpoint;
	string token;
	//! Snapshot id to read (time travel, read-only), or -1 for the latest.
	int64_t snapshot = -1;
	//! Run queries that only touch this database on the server (ATTACH option
	//! PUSHDOWN, default true); false: every read goes through the table scan.
	bool pushdown = true;

	//! The URL without the token (shown as the database path).
	string Display() const;

private:
	void Set(const string &key, const string &value, const string &path);
};

} // namespace duckdb
