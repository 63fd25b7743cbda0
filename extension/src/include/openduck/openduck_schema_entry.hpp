//===----------------------------------------------------------------------===//
// OpenDuckSchemaEntry: a schema of the remote database and its tables, as
// loaded for one transaction. DDL is sent to the server as SQL.
//===----------------------------------------------------------------------===//
#pragma once

#include "duckdb.hpp"
#include "duckdb/catalog/catalog_entry/schema_catalog_entry.hpp"
#include "openduck/openduck_table_entry.hpp"

namespace duckdb {

class OpenDuckCatalog;

class OpenDuckSchemaEntry : public SchemaCatalogEntry {
public:
	OpenDuckSchemaEntry(Catalog &catalog, CreateSchemaInfo &info);

	//! Add a table found on the server (used while loading the catalog).
	OpenDuckTableEntry &AddTable(CreateTableInfo &info, optional_idx cardinality);

	void Scan(ClientContext &context, CatalogType type, const std::function<void(CatalogEntry &)> &callback) override;
	void Scan(CatalogType type, const std::function<void(CatalogEntry &)> &callback) override;
	optional_ptr<CatalogEntry> LookupEntry(CatalogTransaction transaction, const EntryLookupInfo &lookup_info) override;

	optional_ptr<CatalogEntry> CreateTable(CatalogTransaction transaction, BoundCreateTableInfo &info) override;
	void DropEntry(ClientContext &context, DropInfo &info) override;

	optional_ptr<CatalogEntry> CreateIndex(CatalogTransaction transaction, CreateIndexInfo &info,
	                                       TableCatalogEntry &table) override;
	optional_ptr<CatalogEntry> CreateFunction(CatalogTransaction transaction, CreateFunctionInfo &info) override;
	optional_ptr<CatalogEntry> CreateView(CatalogTransaction transaction, CreateViewInfo &info) override;
	optional_ptr<CatalogEntry> CreateSequence(CatalogTransaction transaction, CreateSequenceInfo &info) override;
	optional_ptr<CatalogEntry> CreateType(CatalogTransaction transaction, CreateTypeInfo &info) override;
	void Alter(CatalogTransaction transaction, AlterInfo &info) override;

private:
	OpenDuckCatalog &GetOpenDuckCatalog();
	[[noreturn]] void Unsupported(const string &what);

	vector<unique_ptr<OpenDuckTableEntry>> tables;
	identifier_map_t<idx_t> table_index;
};

} // namespace duckdb
