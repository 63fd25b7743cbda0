//===----------------------------------------------------------------------===//
// OpenDuckStorageExtension: makes `ATTACH 'openduck:<db>?...'` (and the
// `od:` alias) create an OpenDuckCatalog connected to the server.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/storage/storage_extension.hpp"

namespace duckdb {

class OpenDuckStorageExtension : public StorageExtension {
public:
	OpenDuckStorageExtension();

	//! Register for both prefixes (the same object).
	static void Register(DBConfig &config);
};

} // namespace duckdb
