#include "openduck/openduck_table_entry.hpp"

#include "duckdb/catalog/catalog_entry/schema_catalog_entry.hpp"
#include "duckdb/storage/table_storage_info.hpp"
#include "openduck/openduck_scan.hpp"

namespace duckdb {

OpenDuckTableEntry::OpenDuckTableEntry(Catalog &catalog, SchemaCatalogEntry &schema, CreateTableInfo &info,
                                       optional_idx cardinality_p)
    : TableCatalogEntry(catalog, schema, info), columns(info.columns.Copy()), cardinality(cardinality_p) {
}

const string &OpenDuckTableEntry::RemoteSchema() const {
	return schema.name.GetIdentifierName();
}

unique_ptr<BaseStatistics> OpenDuckTableEntry::GetStatistics(ClientContext &context, column_t column_id) {
	return nullptr;
}

TableFunction OpenDuckTableEntry::GetScanFunction(ClientContext &context, unique_ptr<FunctionData> &bind_data) {
	bind_data = OpenDuckScan::Bind(*this);
	return OpenDuckScan::Function();
}

TableStorageInfo OpenDuckTableEntry::GetStorageInfo(ClientContext &context) {
	TableStorageInfo info;
	info.cardinality = cardinality;
	return info;
}

} // namespace duckdb
