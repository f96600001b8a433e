// Checks of the flags that name files, shared by the commands: run before anything is written.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>

#include "host/core/error.hpp"

namespace mbmpo::app {

// A path flag given as an empty string ("--run-dir ''") is refused at parsing, not taken to mean
// its default.
inline CLI::Validator non_empty_path() {
  return CLI::Validator([](const std::string& text) { return text.empty() ? std::string("an empty path") : std::string(); },
                        "PATH");
}

// A file the command will write (atomically, to a temporary name beside it): its directory must
// exist and the path must not be a directory, so that the command fails before its work, not after.
inline void check_output_file(const std::string& flag, const std::string& path) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  MBMPO_CHECK_INPUT(dir.empty() || std::filesystem::is_directory(dir), flag, ": directory ", dir.string(),
                    " does not exist");
  MBMPO_CHECK_INPUT(!std::filesystem::is_directory(path), flag, ": ", path, " is a directory");
}

}  // namespace mbmpo::app
