#include "openduck/openduck_storage_extension.hpp"

#include "duckdb/main/attached_database.hpp"
#include "duckdb/parser/parsed_data/attach_info.hpp"
#include "openduck/openduck_attach_url.hpp"
#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_schema_set.hpp"
#include "openduck/openduck_transaction_manager.hpp"

namespace duckdb {

static unique_ptr<Catalog> OpenDuckAttach(optional_ptr<StorageExtensionInfo> storage_info, ClientContext &context,
                                          AttachedDatabase &db, const string &name, AttachInfo &info,
                                          AttachOptions &options) {
	auto url = OpenDuckAttachUrl::Parse(info.path, options.options);
	bool read_only = options.access_mode == AccessMode::READ_ONLY;
	if (url.snapshot >= 0 && !read_only) {
		// Time travel is read-only: DuckDB then refuses writes before they are planned.
		db.SetReadOnlyDatabase();
		read_only = true;
	}
	auto client = OpenDuckClient::Connect(url.endpoint, url.token, url.database);
	auto catalog = make_uniq<OpenDuckCatalog>(db, std::move(url), std::move(client), read_only);
	// Fail now, with the server's reason, if the token, database or snapshot is wrong (and cache the catalog).
	catalog->CachedSchemas(context);
	return std::move(catalog);
}

static unique_ptr<TransactionManager> OpenDuckCreateTransactionManager(optional_ptr<StorageExtensionInfo> storage_info,
                                                                       AttachedDatabase &db, Catalog &catalog) {
	return make_uniq<OpenDuckTransactionManager>(db, catalog.Cast<OpenDuckCatalog>());
}

OpenDuckStorageExtension::OpenDuckStorageExtension() {
	attach = OpenDuckAttach;
	create_transaction_manager = OpenDuckCreateTransactionManager;
}

void OpenDuckStorageExtension::Register(DBConfig &config) {
	auto extension = make_shared_ptr<OpenDuckStorageExtension>();
	StorageExtension::Register(config, "openduck", extension);
	StorageExtension::Register(config, "od", extension);
}

} // namespace duckdb
