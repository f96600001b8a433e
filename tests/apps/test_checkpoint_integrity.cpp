// Checkpoints are verified on load (host/train/checkpoint_files.hpp). Each case damages a copy of
// a two-iteration run the way a disk, a careless edit or a killed copy would, then resumes or
// evaluates it:
//   - the latest checkpoint damaged: a warning names the file and the reason, the run falls back
//     to the checkpoint before it, and the resumed run ends with the files of an uninterrupted one;
//   - every checkpoint damaged, or a checkpoint evaluated by its own path: exit 2 naming each, and
//     the run directory is left byte for byte as it was.
// The damage is of two kinds: bytes that no longer match their checksums, and values written with
// their checksums recomputed (NaN, a negative scale, a counter or a setting out of range), which
// the checks behind the checksums must catch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "host/core/safetensors.hpp"
#include "run_files.hpp"
#include "run_mbmpo.hpp"

namespace {

using namespace mbmpo::test;

const std::string kLatest = "checkpoints/iter-000002";
const std::string kEarlier = "checkpoints/iter-000001";

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

void flip_a_bit(const fs::path& path) {
  std::string bytes = read(path);
  ASSERT_GT(bytes.size(), 100u) << path;
  bytes[bytes.size() - 37] = static_cast<char>(bytes[bytes.size() - 37] ^ 0x04);  // in the data, past any header
  write(path, bytes);
}

// state.json with every file's checksum and its own recomputed, after `edit` changed the state:
// damage that the checksums cannot see.
void reseal(const fs::path& checkpoint, const std::function<void(nlohmann::json&)>& edit = {}) {
  nlohmann::json state = nlohmann::json::parse(read(checkpoint / "state.json"));
  if (edit) edit(state);
  for (auto& [file, checksum] : state["files"].items()) checksum = mbmpo::file_checksum((checkpoint / file).string());
  write_resealed_state(checkpoint / "state.json", state);
}

// The safetensors file rewritten, its checksum recomputed, with one element of one F32 tensor set.
void set_tensor_value(const fs::path& path, const std::string& tensor, std::size_t index, float value) {
  const std::string bytes = read(path);
  std::uint64_t length = 0;
  for (int i = 0; i < 8; ++i) length |= std::uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, length));
  const mbmpo::Safetensors file = mbmpo::Safetensors::load(path.string());
  mbmpo::Safetensors edited;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const mbmpo::Shape shape = entry["shape"].get<mbmpo::Shape>();
    if (entry["dtype"] == "I64") {
      edited.put_i64(name, shape, file.i64(name, shape));
      continue;
    }
    std::vector<float> values = file.f32(name, shape);
    if (name == tensor) values.at(index) = value;
    edited.put_f32(name, shape, values);
  }
  for (const auto& [key, text] : file.all_metadata()) edited.set_metadata(key, text);
  edited.save(path.string());
}

// dataset.bin with the first transition's first observation set to NaN, its own checksum (FNV-1a,
// host/data/dataset.cpp) recomputed.
void put_nan_in_dataset(const fs::path& path) {
  std::string bytes = read(path);
  const std::size_t first_obs = 8 + 4 + 4 + 8 + 8 + 8;  // magic, dims, capacity, size, total added
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&bytes[first_obs], &nan, sizeof nan);
  std::uint64_t hash = 1469598103934665603ull;
  for (std::size_t i = 0; i + 8 < bytes.size(); ++i) {
    hash ^= static_cast<unsigned char>(bytes[i]);
    hash *= 1099511628211ull;
  }
  std::memcpy(&bytes[bytes.size() - 8], &hash, sizeof hash);
  write(path, bytes);
}

struct Damage {
  const char* what;
  std::function<void(const fs::path& run)> apply;
  const char* named;  // what the warning or the error must say
  std::string resumes_from = kEarlier;
};

// Damage to the latest checkpoint only (or to checkpoints/latest, which leaves it whole).
const std::vector<Damage> kLatestDamage = {
    {"a flipped bit in policy.safetensors", [](const fs::path& r) { flip_a_bit(r / kLatest / "policy.safetensors"); },
     "policy.safetensors does not match its checksum"},
    {"a flipped bit in models.safetensors", [](const fs::path& r) { flip_a_bit(r / kLatest / "models.safetensors"); },
     "models.safetensors does not match its checksum"},
    {"a flipped bit in dataset.bin", [](const fs::path& r) { flip_a_bit(r / kLatest / "dataset.bin"); },
     "dataset.bin does not match its checksum"},
    {"models.safetensors cut short",
     [](const fs::path& r) {
       const fs::path models = r / kLatest / "models.safetensors";
       const std::string bytes = read(models);
       write(models, bytes.substr(0, bytes.size() / 2));
     },
     "models.safetensors does not match its checksum"},
    {"policy.safetensors deleted", [](const fs::path& r) { fs::remove(r / kLatest / "policy.safetensors"); },
     "policy.safetensors is missing"},
    {"state.json deleted", [](const fs::path& r) { fs::remove(r / kLatest / "state.json"); }, "state.json is missing"},
    {"state.json not JSON", [](const fs::path& r) { write(r / kLatest / "state.json", "{\"format\": "); },
     "is not valid JSON"},
    {"iterations_done edited in state.json",
     [](const fs::path& r) {
       nlohmann::json state = nlohmann::json::parse(read(r / kLatest / "state.json"));
       state["iterations_done"] = -1;
       write(r / kLatest / "state.json", state.dump(2));
     },
     "does not match its state_checksum"},
    {"iterations_done = -1, resealed",
     [](const fs::path& r) { reseal(r / kLatest, [](nlohmann::json& s) { s["iterations_done"] = -1; }); },
     "iterations_done, real_steps and episodes_started must be integers >= 0"},
    {"iterations_done = 1 in iter-000002, resealed",
     [](const fs::path& r) { reseal(r / kLatest, [](nlohmann::json& s) { s["iterations_done"] = 1; }); },
     "iterations_done is 1 in the checkpoint of 2 iterations"},
    {"real_steps = 3 (fewer than the dataset holds), resealed",
     [](const fs::path& r) { reseal(r / kLatest, [](nlohmann::json& s) { s["real_steps"] = 3; }); },
     "real_steps is 3 but the dataset holds"},
    {"rollouts_per_task = 0 in its config, resealed",
     [](const fs::path& r) { reseal(r / kLatest, [](nlohmann::json& s) { s["config"]["rollouts_per_task"] = 0; }); },
     "rollouts-per-task must be in"},
    {"imagined_horizon = -1 in its config, resealed",
     [](const fs::path& r) { reseal(r / kLatest, [](nlohmann::json& s) { s["config"]["imagined_horizon"] = -1; }); },
     "imagined-horizon must be in"},
    {"NaN in theta, resealed",
     [](const fs::path& r) {
       set_tensor_value(r / kLatest / "policy.safetensors", "theta", 3, std::nanf(""));
       reseal(r / kLatest);
     },
     "theta[3] is nan"},
    {"infinity in the adapted policies, resealed",
     [](const fs::path& r) {
       set_tensor_value(r / kLatest / "policy.safetensors", "adapted", 0, INFINITY);
       reseal(r / kLatest);
     },
     "adapted[0] is inf"},
    {"NaN in a model weight, resealed",
     [](const fs::path& r) {
       set_tensor_value(r / kLatest / "models.safetensors", "layer0.v", 5, std::nanf(""));
       reseal(r / kLatest);
     },
     "non-finite weight"},
    {"NaN in an Adam moment, resealed",
     [](const fs::path& r) {
       set_tensor_value(r / kLatest / "models.safetensors", "adam.m", 7, std::nanf(""));
       reseal(r / kLatest);
     },
     "non-finite Adam moment in adam.m"},
    {"a negative standard deviation in the normalisation, resealed",
     [](const fs::path& r) {
       set_tensor_value(r / kLatest / "models.safetensors", "normalization.input_std", 1, -0.5f);
       reseal(r / kLatest);
     },
     "normalization.input_std[1] = -0.5"},
    {"NaN in the dataset, resealed",
     [](const fs::path& r) {
       put_nan_in_dataset(r / kLatest / "dataset.bin");
       reseal(r / kLatest);
     },
     "transition 0 holds a NaN"},
    {"checkpoints/latest deleted", [](const fs::path& r) { fs::remove(r / "checkpoints" / "latest"); },
     "checkpoints/latest is missing", kLatest},
    {"checkpoints/latest naming nothing", [](const fs::path& r) { write(r / "checkpoints" / "latest", "iter-9x\n"); },
     "names 'iter-9x', which is no checkpoint here", kLatest},
};

class CheckpointIntegrity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(scratch("checkpoint_integrity"));
    const std::string run = "train " + kTinySettings + " --device cpu --run-dir ";
    ASSERT_EQ(run_mbmpo(run + (*dir_ / "two").string() + " --iterations 2").exit_code, 0);
    ASSERT_EQ(run_mbmpo(run + (*dir_ / "three").string() + " --iterations 3").exit_code, 0);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  // A copy of the two-iteration run.
  static fs::path copy_of_run(const std::string& name) {
    const fs::path copy = *dir_ / name;
    fs::remove_all(copy);
    fs::copy(*dir_ / "two", copy, fs::copy_options::recursive);
    return copy;
  }
  static fs::path* dir_;
};
fs::path* CheckpointIntegrity::dir_ = nullptr;

TEST_F(CheckpointIntegrity, DamageToTheLatestFallsBackWithAWarningAndEndsAsAnUninterruptedRun) {
  const auto expected_rows = without_timings(rows(*dir_ / "three"));
  const std::string expected_policy = read(*dir_ / "three" / "policy.safetensors");
  for (std::size_t i = 0; i < kLatestDamage.size(); ++i) {
    const Damage& damage = kLatestDamage[i];
    SCOPED_TRACE(damage.what);
    const fs::path run = copy_of_run("latest-" + std::to_string(i));
    damage.apply(run);
    const CommandResult resumed = run_mbmpo("train --resume --iterations 3 --quiet --run-dir " + run.string());
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    EXPECT_NE(resumed.output.find("warning"), std::string::npos) << resumed.output;
    EXPECT_NE(resumed.output.find(damage.named), std::string::npos) << resumed.output;
    EXPECT_NE(resumed.output.find("using " + (run / damage.resumes_from).string()), std::string::npos) << resumed.output;
    EXPECT_EQ(without_timings(rows(run)), expected_rows);
    EXPECT_TRUE(read(run / "policy.safetensors") == expected_policy) << "the final policy differs";
    fs::remove_all(run);
  }
}

TEST_F(CheckpointIntegrity, WhenNoCheckpointPassesEachIsNamedAndNothingChanges) {
  const fs::path run = copy_of_run("none-passes");
  flip_a_bit(run / kLatest / "policy.safetensors");
  reseal(run / kEarlier, [](nlohmann::json& s) { s["config"]["rollouts_per_task"] = 0; });
  const auto before = files_under(run);
  const CommandResult resumed = run_mbmpo("train --resume --iterations 3 --quiet --run-dir " + run.string());
  EXPECT_EQ(resumed.exit_code, 2) << resumed.output;
  EXPECT_NE(resumed.output.find("no checkpoint in"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("iter-000002: "), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("policy.safetensors does not match its checksum"), std::string::npos);
  EXPECT_NE(resumed.output.find("iter-000001: "), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("rollouts-per-task"), std::string::npos) << resumed.output;
  const CommandResult evaluated = run_mbmpo("eval --episodes 1 --run-dir " + run.string());
  EXPECT_EQ(evaluated.exit_code, 2) << evaluated.output;
  EXPECT_NE(evaluated.output.find("cannot evaluate"), std::string::npos) << evaluated.output;
  EXPECT_TRUE(files_under(run) == before) << "a refused command changed the run directory";
  fs::remove_all(run);
}

TEST_F(CheckpointIntegrity, AConfigurationThatDisagreesIsRefusedWithoutFallingBack) {
  const fs::path run = copy_of_run("disagrees");
  const auto before = files_under(run);
  const CommandResult resumed =
      run_mbmpo("train --resume --iterations 3 --models 4 --quiet --run-dir " + run.string());
  EXPECT_EQ(resumed.exit_code, 2) << resumed.output;
  EXPECT_NE(resumed.output.find("models = 3 but the configuration says 4"), std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("warning"), std::string::npos) << resumed.output;
  EXPECT_TRUE(files_under(run) == before);
  fs::remove_all(run);
}

TEST_F(CheckpointIntegrity, EvaluationVerifiesWhatItReads) {
  const fs::path run = copy_of_run("eval");
  reseal(run / kLatest, [](nlohmann::json& s) { s["config"]["rollouts_per_task"] = 0; });
  // A run directory falls back, with the warning.
  const CommandResult fallback = run_mbmpo("eval --episodes 1 --adapt --run-dir " + run.string());
  EXPECT_EQ(fallback.exit_code, 0) << fallback.output;
  EXPECT_NE(fallback.output.find("rollouts-per-task"), std::string::npos) << fallback.output;
  EXPECT_NE(fallback.output.find("using " + (run / kEarlier).string()), std::string::npos) << fallback.output;
  // checkpoints/latest, the pointer file, means what the run directory means.
  const CommandResult pointer = run_mbmpo("eval --episodes 1 --adapt --checkpoint " +
                                          (run / "checkpoints" / "latest").string());
  EXPECT_EQ(pointer.exit_code, 0) << pointer.output;
  EXPECT_NE(pointer.output.find("using " + (run / kEarlier).string()), std::string::npos) << pointer.output;
  // A checkpoint named by its own path is taken as it is, or refused.
  const CommandResult refused = run_mbmpo("eval --episodes 1 --adapt --checkpoint " + (run / kLatest).string());
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("rollouts-per-task"), std::string::npos) << refused.output;
  // The final policy file carries the checksum of its tensor bytes.
  flip_a_bit(run / "policy.safetensors");
  const CommandResult flipped = run_mbmpo("eval --episodes 1 --checkpoint " + (run / "policy.safetensors").string());
  EXPECT_EQ(flipped.exit_code, 2) << flipped.output;
  EXPECT_NE(flipped.output.find("do not match the checksum"), std::string::npos) << flipped.output;
  fs::remove_all(run);
}

// A checkpoint written before checksums (state.json version 1) still resumes, with a warning that
// its files are not verified.
TEST_F(CheckpointIntegrity, AVersion1CheckpointResumesWithAWarning) {
  const fs::path run = copy_of_run("version1");
  for (const std::string& checkpoint : {kLatest, kEarlier}) {
    nlohmann::json state = nlohmann::json::parse(read(run / checkpoint / "state.json"));
    state["version"] = 1;
    state.erase("files");
    state.erase("state_checksum");
    write(run / checkpoint / "state.json", state.dump(2));
  }
  const CommandResult resumed = run_mbmpo("train --resume --iterations 3 --quiet --run-dir " + run.string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("written before checkpoints had checksums"), std::string::npos) << resumed.output;
  EXPECT_TRUE(read(run / "policy.safetensors") == read(*dir_ / "three" / "policy.safetensors"));
  fs::remove_all(run);
}

}  // namespace
