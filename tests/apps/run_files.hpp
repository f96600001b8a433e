// What the CLI tests train and read back: the tiny run's settings, a run directory's files and
// progress rows, scratch directories.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "host/core/file_checksum.hpp"

namespace mbmpo::test {

namespace fs = std::filesystem;

// A CI-sized InvertedPendulum run: a fraction of a second per iteration on 2 cores.
inline const std::string kTinySettings =
    "--env inverted_pendulum --random-steps 500 --horizon 100 --eval-episodes 3 --models 3 "
    "--model-hidden 32,32 --model-max-epochs 20 --meta-batch 6 --rollouts-per-task 10 --imagined-horizon 30 "
    "--meta-steps 4 --inner-lr 0.05 --quiet";

inline std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// Writes a checkpoint's state.json edited on purpose, its state_checksum recomputed by the rule of
// host/train/checkpoint_files.cpp (of the compact text without it): what passes the checksum and
// meets the checks behind it.
inline void write_resealed_state(const fs::path& path, nlohmann::json state) {
  state.erase("state_checksum");
  state["state_checksum"] = mbmpo::bytes_checksum(state.dump());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << state.dump(2) << "\n";
}

// A fresh, unique scratch directory per test and process.
inline fs::path scratch(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("mbmpo_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

inline std::vector<nlohmann::json> rows(const fs::path& run_dir) {
  std::vector<nlohmann::json> out;
  std::istringstream lines(read(run_dir / "progress.jsonl"));
  for (std::string line; std::getline(lines, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The rows without their timings (which differ from run to run).
inline std::vector<nlohmann::json> without_timings(std::vector<nlohmann::json> rows) {
  for (auto& row : rows) {
    for (auto it = row.begin(); it != row.end();) {
      it = it.key().rfind("seconds_", 0) == 0 ? row.erase(it) : std::next(it);
    }
  }
  return rows;
}

// Every regular file under `dir`, by its path relative to it, with its bytes.
inline std::map<std::string, std::string> files_under(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) files[fs::relative(entry.path(), dir).string()] = read(entry.path());
  }
  return files;
}

}  // namespace mbmpo::test
