#pragma once
// A fresh temporary directory per test, removed with everything in it when the
// TempDir goes out of scope.

#include <filesystem>
#include <string>

namespace scrapekeep::testing {

class TempDir {
 public:
  // Creates a unique directory under the system temporary directory.
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const;
  // path() / name, as a string (the file is not created).
  std::string file(const std::string& name) const;

 private:
  std::filesystem::path m_path;
};

// The whole of a file's bytes; empty when it cannot be read.
std::string read_file(const std::string& path);

} // namespace scrapekeep::testing
