// A flag's (or config.toml key's) value means what it says, or it is refused: CLI11 reads "" as 0
// or false, wraps "-1" into an unsigned 2^64 - 1, saturates numbers too large for their type and
// takes any integer as a boolean. strict_value<T>() is the check each numeric and boolean option
// runs on its text before CLI11 converts it; the error names the value (CLI11 adds the flag).
#pragma once

#include <CLI/CLI.hpp>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <system_error>
#include <type_traits>

namespace mbmpo {

template <class T>
std::string strict_value_error(const std::string& text) {
  if (text.empty()) return "an empty value is not a value";
  if constexpr (std::is_same_v<T, bool>) {
    for (const char* word : {"true", "false", "1", "0", "yes", "no", "on", "off"}) {
      if (text == word) return "";
    }
    return "'" + text + "' is not true or false";
  } else if constexpr (std::is_integral_v<T>) {
    T value{};
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, value);
    if (error == std::errc::result_out_of_range) return "'" + text + "' is out of range";
    if (error != std::errc() || stop != end) {
      return "'" + text + "' is not " + (std::is_signed_v<T> ? "an integer" : "a non-negative integer");
    }
    return "";
  } else if constexpr (std::is_floating_point_v<T>) {
    // Decimal or scientific notation, as in TOML; strtod would also take C's hex floats (0x1p-1).
    double value = 0;
    const char* end = text.data() + text.size();
    const auto [stop, error] = std::from_chars(text.data(), end, value, std::chars_format::general);
    if (error == std::errc::result_out_of_range) return "'" + text + "' is out of range";
    if (error != std::errc() || stop != end) return "'" + text + "' is not a number";
    if (!std::isfinite(value)) return "'" + text + "' is not a finite number";
    return "";
  } else {
    return "";
  }
}

template <class T>
CLI::Validator strict_value() {
  return CLI::Validator([](std::string& text) { return strict_value_error<T>(text); }, "", "strict value");
}

// Adds the check to an option of a numeric or boolean value; other options are returned as they are.
template <class T>
CLI::Option* strictly(CLI::Option* option) {
  if constexpr (std::is_arithmetic_v<T>) option->check(strict_value<T>());
  return option;
}

}  // namespace mbmpo
