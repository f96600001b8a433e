// The run directory of `mbmpo train` and what reads it back (`mbmpo eval`, mbmpo.eval()):
//
//   config.toml            the effective configuration (written by the CLI)
//   progress.csv, .jsonl   one row per iteration (columns: docs/progress.md)
//   checkpoints/latest     names the newest complete checkpoint directory
//   checkpoints/iter-N/    state.json, policy.safetensors (theta, adapted), models.safetensors
//                          (weights, normalisation, Adam state), dataset.bin
//   policy.safetensors     the final meta-policy (host/train/policy_file.hpp: named tensors, the
//                          configuration in its metadata)
//   models.safetensors     the final dynamics models (without their optimiser state)
//
// A checkpoint is written under iter-N.partial and renamed when complete; "latest" moves last, so
// a run killed at any moment resumes from a complete checkpoint. Writing a seed's files is
// Trainer::State's (run_directory.cpp); the layout is this file's.
#pragma once

#include <string>
#include <vector>

#include "host/train/train_config.hpp"

namespace mbmpo {

// A complete checkpoint (checkpoints/latest, or an iter-N directory that is not .partial).
bool holds_checkpoint(const std::string& run_dir);
// A checkpoint, or progress rows beyond the first iteration's: what a run killed before its first
// checkpoint does not hold (its config.toml, an empty checkpoints/ and the first iteration's row
// are not worth keeping: such a directory takes a fresh run, and --resume starts it over).
bool holds_run(const std::string& run_dir);
// InputError unless run_dir and each folder above it is a directory or does not exist yet.
void check_run_dir_path(const std::string& run_dir);
// InputError unless run_dir can take a fresh run: check_run_dir_path, and it must not hold a run
// (nothing is overwritten).
void check_fresh_run_dir(const std::string& run_dir);

// What a checkpoint or a final policy file holds for evaluation.
struct SavedPolicy {
  TrainConfig config;           // complete for a checkpoint; env and sizes only for policy.safetensors
  std::vector<float> theta;
  bool has_models = false;
  std::string checkpoint_dir;   // the checkpoint read (empty for a policy file)
  std::string models_path;      // models.safetensors of a checkpoint
};

// path: a run directory (its latest checkpoint), a checkpoint directory, or a policy .safetensors.
SavedPolicy load_saved_policy(const std::string& path);

}  // namespace mbmpo
