#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mbmpo::bench {
// Rows of the "env" suite at scale "small" or "paper".
std::vector<nlohmann::json> run_env_suite(const std::string& scale);
}  // namespace mbmpo::bench
