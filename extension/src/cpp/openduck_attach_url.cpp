#include "openduck/openduck_attach_url.hpp"

#include <cstdlib>

namespace duckdb {

static const char *URL_FORM = "ATTACH 'openduck:<database>?endpoint=<url>&token=<token>&snapshot=<id>' AS <name>";

static string Env(const char *name) {
	auto value = std::getenv(name);
	return value ? string(value) : string();
}

static int HexValue(char c) {
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

//! Decode %XX escapes (and '+' as space, as in query strings).
static string PercentDecode(const string &text, const string &path) {
	string result;
	for (idx_t i = 0; i < text.size(); i++) {
		if (text[i] == '+') {
			result += ' ';
		} else if (text[i] == '%') {
			int hi = i + 2 < text.size() ? HexValue(text[i + 1]) : -1;
			int lo = i + 2 < text.size() ? HexValue(text[i + 2]) : -1;
			if (hi < 0 || lo < 0) {
				throw InvalidInputException("OpenDuck: malformed URL '%s': bad %%-escape in '%s' (expected %s)", path,
				                            text, URL_FORM);
			}
			result += char(hi * 16 + lo);
			i += 2;
		} else {
			result += text[i];
		}
	}
	return result;
}

static int64_t ParseSnapshot(const string &value, const string &path) {
	if (value.empty() || value.size() > 18 || value.find_first_not_of("0123456789") != string::npos) {
		throw InvalidInputException("OpenDuck: malformed URL '%s': snapshot must be a snapshot id (a non-negative "
		                            "integer, see `openduck snapshots <db>`), got '%s' (expected %s)",
		                            path, value, URL_FORM);
	}
	return std::stoll(value);
}

void OpenDuckAttachUrl::Set(const string &key, const string &value, const string &path) {
	auto lower = StringUtil::Lower(key);
	if (lower == "endpoint") {
		endpoint = value;
	} else if (lower == "token") {
		token = value;
	} else if (lower == "snapshot") {
		snapshot = ParseSnapshot(value, path);
	} else {
		throw InvalidInputException("OpenDuck: unknown parameter '%s' in '%s': the parameters are endpoint, token "
		                            "and snapshot (%s)",
		                            key, path, URL_FORM);
	}
}

OpenDuckAttachUrl OpenDuckAttachUrl::Parse(const string &path, unordered_map<string, Value> &options) {
	OpenDuckAttachUrl url;
	url.endpoint = Env("OPENDUCK_ENDPOINT");
	url.token = Env("OPENDUCK_TOKEN");

	auto query_start = path.find('?');
	url.database = PercentDecode(path.substr(0, query_start), path);
	if (url.database.empty()) {
		throw InvalidInputException("OpenDuck: malformed URL '%s': missing database name (expected %s)", path,
		                            URL_FORM);
	}
	if (url.database.find_first_of("/:?&=# ") != string::npos) {
		throw InvalidInputException("OpenDuck: malformed URL '%s': '%s' is not a database name (expected %s)", path,
		                            url.database, URL_FORM);
	}
	if (query_start != string::npos) {
		auto params = StringUtil::Split(path.substr(query_start + 1), '&');
		for (auto &param : params) {
			auto eq = param.find('=');
			if (eq == string::npos || eq == 0) {
				throw InvalidInputException("OpenDuck: malformed URL '%s': '%s' is not a key=value parameter "
				                            "(expected %s)",
				                            path, param, URL_FORM);
			}
			url.Set(PercentDecode(param.substr(0, eq), path), PercentDecode(param.substr(eq + 1), path), path);
		}
	}
	// ATTACH ... (TOKEN '..', ENDPOINT '..', SNAPSHOT 42): the same parameters as options.
	for (auto it = options.begin(); it != options.end();) {
		auto key = StringUtil::Lower(it->first);
		if (key == "endpoint" || key == "token" || key == "snapshot") {
			url.Set(key, it->second.ToString(), path);
			it = options.erase(it);
		} else if (key == "pushdown") {
			url.pushdown = BooleanValue::Get(it->second.DefaultCastAs(LogicalType::BOOLEAN));
			it = options.erase(it);
		} else {
			throw InvalidInputException("OpenDuck: unknown ATTACH option '%s': OpenDuck databases take READ_ONLY, "
			                            "ENDPOINT, TOKEN, SNAPSHOT and PUSHDOWN",
			                            it->first);
		}
	}
	if (url.endpoint.empty()) {
		url.endpoint = DEFAULT_ENDPOINT;
	}
	if (!StringUtil::StartsWith(url.endpoint, "http://") && !StringUtil::StartsWith(url.endpoint, "https://")) {
		throw InvalidInputException("OpenDuck: malformed endpoint '%s': expected http://<host>:<port>, e.g. %s (%s)",
		                            url.endpoint, DEFAULT_ENDPOINT, URL_FORM);
	}
	return url;
}

string OpenDuckAttachUrl::Display() const {
	auto result = "openduck:" + database + "?endpoint=" + endpoint;
	if (snapshot >= 0) {
		result += "&snapshot=" + std::to_string(snapshot);
	}
	return result;
}

} // namespace duckdb
