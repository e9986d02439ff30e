#include "support/temp_dir.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "scrapekeep/core/random.hpp"

namespace scrapekeep::testing {

TempDir::TempDir() {
  const auto base = std::filesystem::temp_directory_path();
  for (int attempt = 0; attempt < 100; ++attempt) {
    auto candidate = base / ("scrapekeep-test-" + core::random_hex(8));
    std::error_code ec;
    if (std::filesystem::create_directory(candidate, ec)) {
      m_path = std::move(candidate);
      return;
    }
  }
  throw std::runtime_error("TempDir: cannot create a temporary directory");
}

TempDir::~TempDir() {
  std::error_code ec;  // never throw from a destructor; a leftover dir is harmless
  std::filesystem::remove_all(m_path, ec);
}

const std::filesystem::path& TempDir::path() const { return m_path; }

std::string TempDir::file(const std::string& name) const { return (m_path / name).string(); }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace scrapekeep::testing
