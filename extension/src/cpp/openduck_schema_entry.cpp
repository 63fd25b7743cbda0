#include "openduck/openduck_schema_entry.hpp"

#include "duckdb/parser/parsed_data/create_schema_info.hpp"
#include "duckdb/parser/parsed_data/drop_info.hpp"
#include "duckdb/planner/parsed_data/bound_create_table_info.hpp"
#include "openduck/openduck_catalog.hpp"
#include "openduck/openduck_schema_set.hpp"
#include "openduck/openduck_sql.hpp"
#include "openduck/openduck_transaction.hpp"

namespace duckdb {

OpenDuckSchemaEntry::OpenDuckSchemaEntry(Catalog &catalog, CreateSchemaInfo &info)
    : SchemaCatalogEntry(catalog, info) {
}

OpenDuckCatalog &OpenDuckSchemaEntry::GetOpenDuckCatalog() {
	return catalog.Cast<OpenDuckCatalog>();
}

OpenDuckTableEntry &OpenDuckSchemaEntry::AddTable(CreateTableInfo &info, optional_idx cardinality) {
	auto entry = make_uniq<OpenDuckTableEntry>(catalog, *this, info, cardinality);
	auto &result = *entry;
	auto existing = table_index.find(entry->name);
	if (existing != table_index.end()) {
		tables[existing->second] = std::move(entry);
	} else {
		table_index[result.name] = tables.size();
		tables.push_back(std::move(entry));
	}
	return result;
}

void OpenDuckSchemaEntry::Scan(ClientContext &context, CatalogType type,
                               const std::function<void(CatalogEntry &)> &callback) {
	Scan(type, callback);
}

void OpenDuckSchemaEntry::Scan(CatalogType type, const std::function<void(CatalogEntry &)> &callback) {
	if (type != CatalogType::TABLE_ENTRY) {
		return;
	}
	for (auto &table : tables) {
		callback(*table);
	}
}

optional_ptr<CatalogEntry> OpenDuckSchemaEntry::LookupEntry(CatalogTransaction transaction,
                                                            const EntryLookupInfo &lookup_info) {
	if (lookup_info.GetCatalogType() != CatalogType::TABLE_ENTRY) {
		return nullptr;
	}
	auto it = table_index.find(lookup_info.GetEntryIdentifier());
	if (it != table_index.end()) {
		return tables[it->second].get();
	}
	// The catalog is cached: another client may have created the table since. Reload once per transaction.
	if (!transaction.HasContext()) {
		return nullptr;
	}
	auto &context = transaction.GetContext();
	auto fresh = OpenDuckTransaction::Get(context, catalog).RefreshAfterMiss(context);
	if (!fresh) {
		return nullptr;
	}
	auto schema = fresh->GetSchema(name);
	return schema ? schema->LookupEntry(transaction, lookup_info) : nullptr;
}

optional_ptr<CatalogEntry> OpenDuckSchemaEntry::CreateTable(CatalogTransaction transaction,
                                                            BoundCreateTableInfo &info) {
	auto &catalog = GetOpenDuckCatalog();
	catalog.CheckWritable(transaction.GetContext(), "CREATE TABLE");
	auto &create = info.Base();
	if (create.temporary) {
		throw NotImplementedException("OpenDuck: temporary tables live in the local database, not in '%s'",
		                              catalog.GetName().GetIdentifierName());
	}
	catalog.ExecuteDdl(transaction.GetContext(), OpenDuckSql::CreateTable(name.GetIdentifierName(), create));
	// The statement's result: an entry for the new table (the next lookup reloads the catalog).
	return &AddTable(create, optional_idx());
}

void OpenDuckSchemaEntry::DropEntry(ClientContext &context, DropInfo &info) {
	auto &catalog = GetOpenDuckCatalog();
	string kind;
	switch (info.type) {
	case CatalogType::TABLE_ENTRY:
		kind = "TABLE";
		break;
	case CatalogType::VIEW_ENTRY:
		kind = "VIEW";
		break;
	default:
		Unsupported("DROP " + EnumUtil::ToString(info.type));
	}
	catalog.CheckWritable(context, "DROP " + kind);
	auto sql = "DROP " + kind + (info.if_not_found == OnEntryNotFound::RETURN_NULL ? " IF EXISTS " : " ") +
	           OpenDuckSql::Table(name.GetIdentifierName(), info.GetQualifiedName().Name().GetIdentifierName());
	if (info.cascade) {
		sql += " CASCADE";
	}
	catalog.ExecuteDdl(context, sql);
}

void OpenDuckSchemaEntry::Unsupported(const string &what) {
	throw NotImplementedException("OpenDuck: %s is not supported on remote databases", what);
}

optional_ptr<CatalogEntry> OpenDuckSchemaEntry::CreateIndex(CatalogTransaction transaction, CreateIndexInfo &info,
                                                            TableCatalogEntry &table) {
	Unsupported("CREATE INDEX");
}

optional_ptr<CatalogEntry> OpenDuckSchemaEntry::CreateFunction(CatalogTransaction transaction,
                                                               CreateFunctionInfo &info) {
	Unsupported("CREATE FUNCTION/MACRO");
}

optional_ptr<CatalogEntry> OpenDuckSchemaEntry::CreateView(CatalogTransaction transaction, CreateViewInfo &info) {
	Unsupported("CREATE VIEW");
}

optional_ptr<CatalogEntry> OpenDuckSchemaEntry::CreateSequence(CatalogTransaction transaction,
                                                               CreateSequenceInfo &info) {
	Unsupported("CREATE SEQUENCE");
}

optional_ptr<CatalogEntry> OpenDuckSchemaEntry::CreateType(CatalogTransaction transaction, CreateTypeInfo &info) {
	Unsupported("CREATE TYPE");
}

void OpenDuckSchemaEntry::Alter(CatalogTransaction transaction, AlterInfo &info) {
	Unsupported("ALTER");
}

} // namespace duckdb
