// The integrity of one checkpoint directory (checkpoints/iter-N, run_directory.hpp):
//
//   state.json  {"format": "mbmpo-checkpoint", "version": 2, ..., "files": {name: checksum},
//                "state_checksum": checksum}
//
// Written last, state.json records the XXH3-128 checksum (file_checksum.hpp) of each other file
// of the checkpoint, and of itself (of its compact JSON text without "state_checksum"). A flipped
// bit, a cut-short file or a hand-edited counter fails the check and names the file. Version 1
// (before checksums) still loads, with a warning.
//
// Which checkpoint a resume or an evaluation takes: the one checkpoints/latest names; if it fails
// its checks (or latest is missing or names nothing), the newest complete iter-N that passes,
// with a warning naming what failed; if none passes, an InputError naming each.
#pragma once

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "host/core/error.hpp"

namespace mbmpo {

// The files of a checkpoint besides state.json.
inline const std::vector<std::string>& checkpoint_files() {
  static const std::vector<std::string> files = {"policy.safetensors", "models.safetensors", "dataset.bin"};
  return files;
}

// "iter-000012" for 12 iterations done; -1 for a name that is not one.
std::string checkpoint_name(int iterations_done);
int checkpoint_iterations(const std::string& name);

// state.json's text for the checkpoint in `dir`, whose other files are written: `state` with the
// checksums of those files and its own.
std::string sealed_state(const std::filesystem::path& dir, nlohmann::json state);

// state.json of the checkpoint in `dir` once it and every file it lists match their checksums
// and its counters agree with the directory's name; InputError naming what does not.
nlohmann::json verified_state(const std::filesystem::path& dir);

// A checkpoint that passes its checks and still cannot be used with this run's configuration
// (another task or model size): no older checkpoint of the run would do, so there is no fallback.
struct CheckpointMismatch : InputError {
  using InputError::InputError;
};

// The checkpoint of `checkpoints` (a run's checkpoints/ folder) that `read` accepts: tried in the
// order above, `read` throwing InputError for one that fails. Returns its directory; `read` has
// been called on it last. `purpose` starts the error message ("cannot resume").
std::filesystem::path read_first_sound_checkpoint(const std::filesystem::path& checkpoints, const std::string& purpose,
                                                  const std::function<void(const std::filesystem::path&)>& read);

}  // namespace mbmpo
