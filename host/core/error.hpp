// Error types. Every failure is an exception whose message names the bad thing and what was
// expected; the CLI prints it on one line and exits non-zero.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace mbmpo {

// A failure inside the program or the machine (CUDA, cuBLAS, MuJoCo, I/O). The CLI exits 1.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad input from the user: a flag, a config value, a file's contents. The CLI exits 2.
class InputError : public Error {
 public:
  using Error::Error;
};

// A file that cannot be written where it was asked for (a missing directory, no permission, a
// full disk). The CLI exits 1; Python raises OSError.
class FileError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}
}  // namespace detail

}  // namespace mbmpo

// Internal invariant or argument check: throws mbmpo::Error with the message's parts joined.
#define MBMPO_CHECK(condition, ...)                                         \
  do {                                                                      \
    if (!(condition)) throw ::mbmpo::Error(::mbmpo::detail::concat(__VA_ARGS__)); \
  } while (0)

// Check of user input: throws mbmpo::InputError.
#define MBMPO_CHECK_INPUT(condition, ...)                                        \
  do {                                                                           \
    if (!(condition)) throw ::mbmpo::InputError(::mbmpo::detail::concat(__VA_ARGS__)); \
  } while (0)
