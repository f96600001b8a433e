// Runs the `mbmpo` binary as a user would, for the CLI tests: the one CMake built (MBMPO_BINARY),
// or the one named by the environment variable MBMPO_BINARY, for a build directory that was moved
// to another machine (scripts/gpu-check.sh).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace mbmpo::test {

inline std::string mbmpo_binary() {
  const char* moved = std::getenv("MBMPO_BINARY");
  return moved && *moved ? moved : MBMPO_BINARY;
}

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

// environment: "NAME=VALUE ..." set for this command only. A process killed by a signal has
// exit_code -1.
inline CommandResult run_mbmpo(const std::string& arguments, const std::string& environment = "") {
  const std::string command =
      (environment.empty() ? "" : "env " + environment + " ") + "\"" + mbmpo_binary() + "\" " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace mbmpo::test
