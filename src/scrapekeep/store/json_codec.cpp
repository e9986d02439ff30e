#include "scrapekeep/store/json_codec.hpp"

namespace scrapekeep::store {

namespace {

core::FieldList field_list_from_json(const Json& json) {
  core::FieldList out;
  for (const auto& [name, value] : json.items()) {
    out.emplace_back(name, value.get<std::string>());
  }
  return out;
}

} // namespace

Json to_json(const core::FieldList& fields) {
  Json out = Json::object();
  for (const auto& [name, xpath] : fields) {
    out[name] = xpath;
  }
  return out;
}

Json to_json(const core::FieldValues& values) {
  Json out = Json::object();
  for (const auto& [name, value] : values) {
    out[name] = value ? Json(*value) : Json(nullptr);
  }
  return out;
}

std::string dump_scraped(const core::FieldValues& values) {
  return to_json(values).dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json to_json(const core::Selectors& s) {
  return Json{{"item", s.item},
              {"fields", to_json(s.fields)},
              {"next_page", s.next_page},
              {"detail_link", s.detail_link},
              {"detail_fields", to_json(s.detail_fields)}};
}

Json to_json(const core::JobOptions& o) {
  return Json{{"timeout", o.timeout},
              {"max_items", o.max_items},
              {"follow_pagination", o.follow_pagination},
              {"max_pages", o.max_pages},
              {"depth", o.depth},
              {"selectors", to_json(o.selectors)}};
}

core::FieldValues field_values_from_json(const Json& json) {
  core::FieldValues out;
  for (const auto& [name, value] : json.items()) {
    if (value.is_null()) {
      out.emplace_back(name, std::nullopt);
    } else {
      out.emplace_back(name, value.get<std::string>());
    }
  }
  return out;
}

core::Selectors selectors_from_json(const Json& json) {
  core::Selectors s;
  s.item = json.at("item").get<std::string>();
  s.fields = field_list_from_json(json.at("fields"));
  s.next_page = json.at("next_page").get<std::string>();
  s.detail_link = json.at("detail_link").get<std::string>();
  s.detail_fields = field_list_from_json(json.at("detail_fields"));
  return s;
}

std::optional<core::FieldValues> stored_field_values(std::string_view text) {
  try {
    return field_values_from_json(Json::parse(text.begin(), text.end()));
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::optional<core::Selectors> stored_selectors(std::string_view text) {
  try {
    return selectors_from_json(Json::parse(text.begin(), text.end()));
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

} // namespace scrapekeep::store
