#pragma once
// JSON shapes of core values shared by the store's columns and the API's
// bodies, so each shape is written once.

#include <nlohmann/json.hpp>

#include <optional>
#include <string_view>

#include "scrapekeep/core/job.hpp"

namespace scrapekeep::store {

using Json = nlohmann::ordered_json;

// {"name": "xpath", ...} in order.
Json to_json(const core::FieldList& fields);
// {"name": "value" | null, ...} in order.
Json to_json(const core::FieldValues& values);
// {"item", "fields", "next_page", "detail_link", "detail_fields"}.
Json to_json(const core::Selectors& selectors);
// {"timeout", "max_items", "follow_pagination", "max_pages", "depth", "selectors"}.
Json to_json(const core::JobOptions& options);

// Scraped values as stored: a JSON text in which bytes that are not UTF-8
// (a stray byte in a page read as UTF-8 keeps its raw value) become U+FFFD
// instead of making the dump throw.
std::string dump_scraped(const core::FieldValues& values);

// Inverses for values the store wrote itself; throw nlohmann::json::exception
// on a malformed document.
core::FieldValues field_values_from_json(const Json& json);
core::Selectors selectors_from_json(const Json& json);

// The same from a stored column's text; nullopt when it is not what the
// store writes (a damaged or hand-edited row). One test of what is readable,
// for the readers and `inspect check` alike.
std::optional<core::FieldValues> stored_field_values(std::string_view text);
std::optional<core::Selectors> stored_selectors(std::string_view text);

} // namespace scrapekeep::store
