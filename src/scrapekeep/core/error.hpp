#pragma once
// Errors as values: a small fixed set of codes plus a message meant for people.

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace scrapekeep::core {

enum class ErrorCode { not_found, invalid_argument, conflict, unavailable, internal };

struct Error {
  ErrorCode code = ErrorCode::internal;
  std::string message;
};

const char* to_string(ErrorCode code);

// A value or an Error. Check ok() before value(); error() only when !ok().
template <typename T>
class Result {
 public:
  Result(T value) : m_data(std::move(value)) {}
  Result(Error error) : m_data(std::move(error)) {}

  bool ok() const { return m_data.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() {
    assert(ok());
    return std::get<0>(m_data);
  }
  const T& value() const {
    assert(ok());
    return std::get<0>(m_data);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  const Error& error() const {
    assert(!ok());
    return std::get<1>(m_data);
  }

 private:
  std::variant<T, Error> m_data;
};

// Result of an operation with no value.
struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

} // namespace scrapekeep::core
