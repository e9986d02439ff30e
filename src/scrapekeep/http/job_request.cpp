#include "scrapekeep/http/job_request.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "scrapekeep/core/text.hpp"

namespace scrapekeep::http {

namespace {

constexpr size_t k_max_xpath = 2000;
constexpr size_t k_max_fields = 100;
constexpr size_t k_max_field_name = 100;

struct TooDeep {};
struct TooMany {};

class Validator {
 public:
  explicit Validator(const XPathCheck& check) : m_check(check) {}

  void fail(const std::string& field, const std::string& why) {
    if (!m_fields.contains(field)) {
      m_fields[field] = why;
    }
  }
  bool ok() const { return m_fields.empty(); }
  const Json& fields() const { return m_fields; }

  void unknown_keys(const Json& obj, std::initializer_list<const char*> known,
                    const std::string& prefix) {
    for (const auto& item : obj.items()) {
      const std::string& key = item.key();
      if (std::none_of(known.begin(), known.end(), [&](const char* k) { return key == k; })) {
        fail(prefix + key, "unknown field");
      }
    }
  }

  // An integer in [lo, hi]; integral JSON numbers only (no booleans, no 1.5).
  void integer(const Json& obj, const char* key, const std::string& name, core::OptionRange range,
               int& out) {
    const int lo = range.lo;
    const int hi = range.hi;
    if (!obj.contains(key) || obj.at(key).is_null()) {
      return;
    }
    const Json& v = obj.at(key);
    const std::string why =
        "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    if (v.is_number_unsigned()) {
      // Above INT64_MAX it would wrap if read as signed.
      const auto n = v.get<std::uint64_t>();
      if (n > static_cast<std::uint64_t>(hi) || (lo > 0 && n < static_cast<std::uint64_t>(lo))) {
        fail(name, why);
        return;
      }
      out = static_cast<int>(n);
    } else if (v.is_number_integer()) {
      const auto n = v.get<std::int64_t>();
      if (n < lo || n > hi) {
        fail(name, why);
        return;
      }
      out = static_cast<int>(n);
    } else if (v.is_number_float()) {
      // Range first: converting a double outside int's range is undefined.
      const double d = v.get<double>();
      if (!(d >= lo && d <= hi) || d != std::floor(d)) {
        fail(name, why);
        return;
      }
      out = static_cast<int>(d);
    } else {
      fail(name, why);
    }
  }

  void boolean(const Json& obj, const char* key, const std::string& name, bool& out) {
    if (!obj.contains(key) || obj.at(key).is_null()) {
      return;
    }
    if (!obj.at(key).is_boolean()) {
      fail(name, "must be true or false");
      return;
    }
    out = obj.at(key).get<bool>();
  }

  // An XPath string; `required` fails when absent; `role` says what it may
  // give (see core::SelectorRole).
  void xpath(const Json& obj, const std::string& key, const std::string& name, bool required,
             std::string& out, core::SelectorRole role = core::SelectorRole::field) {
    if (!obj.contains(key) || obj.at(key).is_null()) {
      if (required) {
        fail(name, "is required");
      }
      return;
    }
    const Json& v = obj.at(key);
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      fail(name, "must be a non-empty XPath 1.0 expression");
      return;
    }
    const auto& text = v.get_ref<const std::string&>();
    if (text.find('\0') != std::string::npos) {
      // libxml2 would compile the part before it alone.
      fail(name, "must not contain a NUL character (\\u0000)");
      return;
    }
    if (core::utf8_length(text) > k_max_xpath) {
      fail(name, "must be at most " + std::to_string(k_max_xpath) + " characters");
      return;
    }
    if (m_check) {
      if (auto why = m_check(text, role)) {
        fail(name, "is not a valid XPath 1.0 expression: " + *why);
        return;
      }
    }
    out = text;
  }

  void field_map(const Json& obj, const char* key, const std::string& name, core::FieldList& out) {
    if (!obj.contains(key) || obj.at(key).is_null()) {
      return;
    }
    const Json& v = obj.at(key);
    if (!v.is_object()) {
      fail(name, "must be an object of name -> XPath");
      return;
    }
    if (v.size() > k_max_fields) {
      fail(name, "must have at most " + std::to_string(k_max_fields) + " fields");
      return;
    }
    for (const auto& [field, expr] : v.items()) {
      const std::string fname = name + "." + field;
      if (field.empty() || core::utf8_length(field) > k_max_field_name) {
        fail(name, "field names must be 1 to " + std::to_string(k_max_field_name) + " characters");
        continue;
      }
      if (core::has_control_char(field)) {
        fail(name, "field names must not contain control characters");
        continue;
      }
      std::string xpath_text;
      xpath(v, field, fname, true, xpath_text);
      if (!xpath_text.empty()) {
        out.emplace_back(field, xpath_text);
      }
    }
  }

 private:
  const XPathCheck& m_check;
  Json m_fields = Json::object();
};

// A URL with one of these is no URL (RFC 3986 has no raw space or control).
// C0, DEL and the C1 controls (U+0080..U+009F, "\xC2\x80".."\xC2\x9F" in UTF-8).
bool has_space_or_control(const std::string& url) {
  for (std::size_t i = 0; i < url.size(); ++i) {
    const auto c = static_cast<unsigned char>(url[i]);
    const auto next = i + 1 < url.size() ? static_cast<unsigned char>(url[i + 1]) : 0;
    if (c <= 0x20 || c == 0x7f || (c == 0xc2 && next >= 0x80 && next <= 0x9f)) {
      return true;
    }
  }
  return false;
}

} // namespace

bool is_http_url(const std::string& url) {
  const size_t rest = core::http_scheme_length(url);
  if (rest == 0) {
    return false;
  }
  if (has_space_or_control(url)) {
    return false;
  }
  const size_t host_end = url.find_first_of("/?#", rest);
  std::string authority = url.substr(rest, host_end == std::string::npos ? std::string::npos
                                                                         : host_end - rest);
  if (const size_t at = authority.rfind('@'); at != std::string::npos) {
    authority = authority.substr(at + 1);
  }
  // The host: an IPv6 address in brackets, or a name or IPv4 address.
  size_t host_length = 0;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string::npos || close == 1) {
      return false;
    }
    host_length = close + 1;
  } else {
    host_length = std::min(authority.find(':'), authority.size());
  }
  if (host_length == 0) {
    return false;
  }
  // Then nothing, or ':' and a port (not empty: libxml2 2.9, which the
  // fetcher parses URLs with, refuses "host:/").
  const std::string port = authority.substr(host_length);
  if (port.empty()) {
    return true;
  }
  if (port.front() != ':' || port.size() < 2 || port.size() > 6 ||
      !std::all_of(port.begin() + 1, port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  const int number = std::stoi(port.substr(1));
  return number >= 1 && number <= 65535;
}

std::variant<Json, ApiError> parse_json_body(const std::string& body,
                                             std::vector<std::string>* repeated_keys) {
  // Per open object or array: its path (as validation errors name fields),
  // the key read last, the keys read so far and its members so far.
  struct Open {
    std::string path;
    std::string key;
    std::unordered_set<std::string> keys;
    bool is_array = false;
    std::size_t members = 0;
  };
  std::vector<Open> open;
  // Each key given twice (once, however often it is), named once the body is
  // known to be JSON: a body that is not is INVALID_JSON whatever it repeats.
  std::vector<std::string> repeated;
  try {
    // An object's members are counted at their keys, an array's as each
    // value or nested object or array in it begins.
    const auto count_member = [&](bool key) {
      if (!open.empty() && open.back().is_array != key &&
          ++open.back().members > k_max_json_members) {
        throw TooMany{};
      }
    };
    Json::parser_callback_t check = [&](int depth, Json::parse_event_t event, Json& parsed) {
      using Event = Json::parse_event_t;
      if (event == Event::value || event == Event::object_start || event == Event::array_start) {
        count_member(false);
      }
      if (event == Event::object_start || event == Event::array_start) {
        // `depth` counts the objects and arrays around this one.
        if (depth >= k_max_json_depth) {
          throw TooDeep{};
        }
        std::string path;
        if (!open.empty() && !open.back().key.empty()) {
          path = open.back().path + open.back().key + ".";
        } else if (!open.empty()) {
          path = open.back().path;
        }
        open.push_back(Open{std::move(path), {}, {}, event == Event::array_start, 0});
      } else if (event == Event::object_end || event == Event::array_end) {
        open.pop_back();
      } else if (event == Event::key && !open.empty()) {
        count_member(true);
        const std::string& key = parsed.get_ref<const std::string&>();
        if (!open.back().keys.insert(key).second) {
          std::string path = open.back().path + key;
          if (std::find(repeated.begin(), repeated.end(), path) == repeated.end()) {
            repeated.push_back(std::move(path));
          }
        }
        open.back().key = key;
      }
      return true;
    };
    Json parsed = Json::parse(body, check);
    if (repeated_keys != nullptr) {
      *repeated_keys = std::move(repeated);
    } else if (!repeated.empty()) {
      Json fields = Json::object();
      for (const auto& path : repeated) {
        fields[path] = "is given more than once";
      }
      return validation_error(fields);
    }
    return parsed;
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    // nlohmann's text is "[json.exception.parse_error.101] parse error at line 1, ...".
    if (const size_t pos = what.find("] "); pos != std::string::npos) {
      what = what.substr(pos + 2);
    }
    return invalid_json(what, e.byte);
  } catch (const Json::out_of_range& e) {
    // A number beyond double's range ("1e400"): nlohmann reports it as
    // "number overflow parsing '1e400'" without a position; find the token.
    std::string what = e.what();
    std::size_t position = 0;
    if (const size_t open = what.find('\''); open != std::string::npos) {
      const size_t close = what.find('\'', open + 1);
      const std::string token = what.substr(open + 1, close == std::string::npos
                                                          ? std::string::npos
                                                          : close - open - 1);
      if (const size_t at = body.find(token); at != std::string::npos) {
        position = at + token.size();
      }
    }
    return invalid_json("number out of range at byte " + std::to_string(position), position);
  } catch (const TooDeep&) {
    return invalid_json("nested deeper than " + std::to_string(k_max_json_depth) + " levels", 0);
  } catch (const TooMany&) {
    return invalid_json(
        "an object or array has more than " + std::to_string(k_max_json_members) + " members", 0);
  }
}

std::variant<CreateJobRequest, ApiError> parse_create_job(const std::string& body,
                                                          const XPathCheck& xpath_check) {
  std::vector<std::string> repeated;
  auto parsed = parse_json_body(body, &repeated);
  if (auto* err = std::get_if<ApiError>(&parsed)) {
    return *err;
  }
  const Json& doc = std::get<Json>(parsed);
  Validator v(xpath_check);
  // A key given twice is named as such (the first reason given for a field
  // stands), and every other bad field beside it too.
  for (const auto& path : repeated) {
    v.fail(path, "is given more than once");
  }
  CreateJobRequest req;
  if (!doc.is_object()) {
    v.fail("body", "must be a JSON object");
    return validation_error(v.fields());
  }
  v.unknown_keys(doc, {"url", "options"}, "");

  if (!doc.contains("url") || doc.at("url").is_null()) {
    v.fail("url", "is required");
  } else if (!doc.at("url").is_string()) {
    v.fail("url", "must be a string");
  } else {
    req.url = doc.at("url").get<std::string>();
    if (core::utf8_length(req.url) > core::k_max_url_chars) {
      v.fail("url", "must be at most 2048 characters");
    } else if (has_space_or_control(req.url)) {
      v.fail("url", "must not contain spaces or control characters (write a space as %20)");
    } else if (!is_http_url(req.url)) {
      v.fail("url",
             "must be an absolute http or https URL, with a host and, if any, a port from 1 to "
             "65535");
    }
  }

  core::JobOptions& o = req.options;
  const Json empty = Json::object();
  const Json* options = &empty;
  // An options or selectors value that is there but not an object is named
  // as such, not as the fields inside it that were never sent.
  bool malformed = false;
  if (doc.contains("options") && !doc.at("options").is_null()) {
    if (!doc.at("options").is_object()) {
      v.fail("options", "must be an object");
      malformed = true;
    } else {
      options = &doc.at("options");
    }
  }
  v.unknown_keys(*options,
                 {"timeout", "max_items", "follow_pagination", "max_pages", "depth", "selectors"},
                 "options.");
  v.integer(*options, "timeout", "options.timeout", core::k_timeout_range, o.timeout);
  v.integer(*options, "max_items", "options.max_items", core::k_max_items_range, o.max_items);
  v.boolean(*options, "follow_pagination", "options.follow_pagination", o.follow_pagination);
  v.integer(*options, "max_pages", "options.max_pages", core::k_max_pages_range, o.max_pages);
  v.integer(*options, "depth", "options.depth", core::k_depth_range, o.depth);

  const Json* selectors = &empty;
  if (options->contains("selectors") && !options->at("selectors").is_null()) {
    if (!options->at("selectors").is_object()) {
      v.fail("options.selectors", "must be an object");
      malformed = true;
    } else {
      selectors = &options->at("selectors");
    }
  }
  const std::string sp = "options.selectors.";
  v.unknown_keys(*selectors, {"item", "fields", "next_page", "detail_link", "detail_fields"}, sp);
  using core::SelectorRole;
  v.xpath(*selectors, "item", sp + "item", !malformed, o.selectors.item, SelectorRole::item);
  v.field_map(*selectors, "fields", sp + "fields", o.selectors.fields);
  v.xpath(*selectors, "next_page", sp + "next_page", false, o.selectors.next_page,
          SelectorRole::link);
  v.xpath(*selectors, "detail_link", sp + "detail_link", false, o.selectors.detail_link,
          SelectorRole::link);
  v.field_map(*selectors, "detail_fields", sp + "detail_fields", o.selectors.detail_fields);

  if (!v.ok()) {
    return validation_error(v.fields());
  }
  return req;
}

} // namespace scrapekeep::http
