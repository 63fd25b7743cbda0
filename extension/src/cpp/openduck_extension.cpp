// The C++ half's init: called by the Rust entry point openduck_duckdb_cpp_init
// (src/lib.rs) with DuckDB's ExtensionLoader and the Rust client's C API.
#include "duckdb.hpp"
#include "duckdb/main/config.hpp"
#include "duckdb/main/extension/extension_loader.hpp"
#include "openduck/openduck_client.hpp"
#include "openduck/openduck_info_functions.hpp"
#include "openduck/openduck_query_function.hpp"
#include "openduck/openduck_storage_extension.hpp"

extern "C" void openduck_cpp_init(void *loader_ptr, const openduck_client_api *api) {
	auto &loader = *static_cast<duckdb::ExtensionLoader *>(loader_ptr);
	duckdb::OpenDuckClient::SetApi(api);
	auto &db = loader.GetDatabaseInstance();
	duckdb::OpenDuckStorageExtension::Register(duckdb::DBConfig::GetConfig(db));
	loader.RegisterFunction(duckdb::OpenDuckQueryFunction::Function());
	loader.RegisterFunction(duckdb::OpenDuckInfoFunctions::Snapshots());
	loader.RegisterFunction(duckdb::OpenDuckInfoFunctions::Stats());
	loader.SetDescription("OpenDuck: ATTACH 'openduck:<db>?endpoint=..&token=..' as a remote database");
}
