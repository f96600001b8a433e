#include "host/train/checkpoint_files.hpp"

#include <algorithm>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "host/core/atomic_file.hpp"
#include "host/core/file_checksum.hpp"

namespace fs = std::filesystem;

namespace mbmpo {
namespace {

constexpr int kVersion = 2;  // 1: before checksums

// The checksum of a state without its "state_checksum": of its compact text, whose keys
// nlohmann::json keeps sorted, so that the text read back gives the same digits.
std::string state_checksum(nlohmann::json state) {
  state.erase("state_checksum");
  return bytes_checksum(state.dump());
}

bool is_count(const nlohmann::json& state, const char* key) {
  return state.contains(key) && state.at(key).is_number_integer() && state.at(key).get<std::int64_t>() >= 0;
}

std::string trimmed(std::string text) {
  text.erase(std::remove_if(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); }), text.end());
  return text;
}

// Damaged text shown in a message: bytes other than printable ASCII as '?'.
std::string printable(std::string text) {
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return text;
}

std::string joined(const std::vector<std::string>& parts) {
  std::string text;
  for (const std::string& part : parts) text += (text.empty() ? "" : "; ") + part;
  return text;
}

}  // namespace

std::string checkpoint_name(int iterations_done) {
  std::ostringstream name;
  name << "iter-" << std::setw(6) << std::setfill('0') << iterations_done;
  return name.str();
}

int checkpoint_iterations(const std::string& name) {
  const std::string prefix = "iter-";
  if (name.size() <= prefix.size() || name.size() > prefix.size() + 9 || name.compare(0, prefix.size(), prefix) != 0) {
    return -1;
  }
  const std::string digits = name.substr(prefix.size());
  if (!std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); })) return -1;
  return checkpoint_name(std::stoi(digits)) == name ? std::stoi(digits) : -1;
}

std::string sealed_state(const fs::path& dir, nlohmann::json state) {
  state["version"] = kVersion;
  nlohmann::json files = nlohmann::json::object();
  for (const std::string& file : checkpoint_files()) files[file] = file_checksum((dir / file).string());
  state["files"] = files;
  state["state_checksum"] = state_checksum(state);
  return state.dump(2) + "\n";
}

nlohmann::json verified_state(const fs::path& dir) {
  const fs::path path = dir / "state.json";
  MBMPO_CHECK_INPUT(fs::exists(path), path.string(), " is missing");
  const std::string text = read_file(path.string());
  // nlohmann::json stops reading at a NUL byte, so that garbage after one would pass unseen.
  MBMPO_CHECK_INPUT(text.find('\0') == std::string::npos, path.string(), " holds a NUL byte (the file is corrupt)");
  nlohmann::json state;
  try {
    state = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path.string() + " is not valid JSON (" + e.what() + ")");
  }
  MBMPO_CHECK_INPUT(state.is_object() && state.value("format", "") == "mbmpo-checkpoint", path.string(),
                    " is not an mbmpo checkpoint state");
  const nlohmann::json version = state.value("version", nlohmann::json());
  MBMPO_CHECK_INPUT(version == 1 || version == kVersion, path.string(), " has version ", version.dump(),
                    ", this mbmpo reads versions 1 and ", kVersion);
  if (version == 1) {
    std::fprintf(stderr, "mbmpo: warning: %s was written before checkpoints had checksums: its files are not verified\n",
                 dir.string().c_str());
  } else {
    MBMPO_CHECK_INPUT(state.contains("state_checksum") && state.at("state_checksum") == state_checksum(state),
                      path.string(), " does not match its state_checksum (the file is corrupt or was edited)");
    const nlohmann::json files = state.value("files", nlohmann::json());
    for (const std::string& file : checkpoint_files()) {
      const fs::path file_path = dir / file;
      MBMPO_CHECK_INPUT(files.is_object() && files.contains(file), path.string(), " records no checksum for ", file);
      MBMPO_CHECK_INPUT(fs::exists(file_path), file_path.string(), " is missing");
      MBMPO_CHECK_INPUT(file_checksum(file_path.string()) == files.at(file), file_path.string(),
                        " does not match its checksum in state.json (the file is corrupt)");
    }
  }
  // The counters, also in a version-1 state that has no checksum to protect them.
  MBMPO_CHECK_INPUT(is_count(state, "iterations_done") && is_count(state, "real_steps") &&
                        is_count(state, "episodes_started"),
                    path.string(), ": iterations_done, real_steps and episodes_started must be integers >= 0");
  const int named = checkpoint_iterations(dir.filename().string());
  MBMPO_CHECK_INPUT(named < 0 || state.at("iterations_done") == named, path.string(), ": iterations_done is ",
                    state.at("iterations_done").dump(), " in the checkpoint of ", named, " iterations");
  MBMPO_CHECK_INPUT(state.contains("config") && state.at("config").is_object(), path.string(),
                    " holds no configuration");
  return state;
}

fs::path read_first_sound_checkpoint(const fs::path& checkpoints, const std::string& purpose,
                                     const std::function<void(const fs::path&)>& read) {
  std::vector<std::string> failures;
  std::vector<fs::path> candidates;
  const fs::path latest = checkpoints / "latest";
  if (fs::is_regular_file(latest)) {
    const std::string name = trimmed(read_file(latest.string()));
    if (checkpoint_iterations(name) >= 0 && fs::is_directory(checkpoints / name)) {
      candidates.push_back(checkpoints / name);
    } else {
      failures.push_back(latest.string() + " names '" + printable(name.substr(0, 40)) + "', which is no checkpoint here");
    }
  } else if (fs::exists(latest)) {
    failures.push_back(latest.string() + " is not a file");
  }
  std::vector<std::pair<int, fs::path>> others;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(checkpoints, error)) {
    const int n = checkpoint_iterations(entry.path().filename().string());
    if (n >= 0 && entry.is_directory() && (candidates.empty() || entry.path() != candidates.front())) {
      others.emplace_back(n, entry.path());
    }
  }
  std::sort(others.begin(), others.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  for (const auto& other : others) candidates.push_back(other.second);
  if (!fs::exists(latest) && !candidates.empty()) {
    failures.push_back(latest.string() + " is missing (the run stopped as it wrote it?)");
  }
  MBMPO_CHECK_INPUT(!candidates.empty(), purpose, ": ", checkpoints.parent_path().string(), " has no checkpoint",
                    failures.empty() ? " (checkpoints/latest is missing)" : " (" + joined(failures) + ")");
  for (const fs::path& dir : candidates) {
    try {
      read(dir);
    } catch (const CheckpointMismatch&) {
      throw;
    } catch (const InputError& e) {
      failures.push_back(dir.filename().string() + ": " + e.what());
      continue;
    }
    if (!failures.empty()) {
      std::fprintf(stderr, "mbmpo: warning: %s; using %s, the newest checkpoint that passes its checks\n",
                   joined(failures).c_str(), dir.string().c_str());
    }
    return dir;
  }
  throw InputError(purpose + ": no checkpoint in " + checkpoints.string() + " passes its checks: " + joined(failures));
}

}  // namespace mbmpo
