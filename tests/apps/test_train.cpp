// `mbmpo train` and `mbmpo eval` as a user runs them, on each backend (the `--device` of every
// command is the test's parameter): learning on a fast task, resuming after a SIGKILL with the
// same files, two runs with one seed giving the same bits, bad input, the smoke preset; and the
// configuration round trip and one whole iteration on CUDA against the CPU backend.
#include <gtest/gtest.h>

#include "backend_test.hpp"
#include "host/core/memory.hpp"
#include "host/core/safetensors.hpp"
#include "host/train/run_directory.hpp"
#include "host/train/train_fields.hpp"
#include "host/train/trainer.hpp"
#include "host/policy/policy_layout.hpp"
#include "host/core/cpu_isa.hpp"
#include "run_files.hpp"
#include "run_mbmpo.hpp"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;

namespace {

using mbmpo::Backend;
using mbmpo::test::CommandResult;
using mbmpo::test::run_mbmpo;
using mbmpo::test::read;
using mbmpo::test::rows;
using mbmpo::test::scratch;
using mbmpo::test::without_timings;

using mbmpo::test::kTinySettings;

double eval_return(const std::string& target) {
  const CommandResult run = run_mbmpo("eval " + target + " --episodes 10 --json");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  return nlohmann::json::parse(run.output.substr(run.output.find('{'))).at("return_mean").get<double>();
}

// Runs `mbmpo ARGS` and kills it with SIGKILL once `file` exists; false when the run ended first
// (or the file never came within a minute).
bool sigkill_once_exists(const std::string& arguments, const fs::path& file) {
  const pid_t child = fork();
  if (child < 0) return false;
  if (child == 0) {
    const std::string binary = mbmpo::test::mbmpo_binary();
    std::vector<std::string> args = {binary};
    std::istringstream words(arguments);
    for (std::string w; words >> w;) args.push_back(w);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (!fs::exists(file) && std::chrono::steady_clock::now() < deadline) {
    if (waitpid(child, &status, WNOHANG) == child) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool found = fs::exists(file);
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  return found && !WIFEXITED(status);
}

// The tests below run on each backend: kTiny is the tiny run on this test's device.
class TrainBackends : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    MBMPO_REQUIRE_BACKEND(GetParam());
    device = mbmpo::to_string(GetParam());
    kTiny = kTinySettings + " --device " + device;
  }
  // A scratch directory named after the test and the backend.
  fs::path dir(const std::string& name) const { return scratch(name + "_" + device); }
  std::string device, kTiny;
};

TEST_P(TrainBackends, InvertedPendulumBeatsTheRandomPolicy) {
  const fs::path dir = this->dir("pendulum");
  const CommandResult untrained = run_mbmpo("train " + kTiny + " --iterations 0 --run-dir " + (dir / "untrained").string());
  ASSERT_EQ(untrained.exit_code, 0) << untrained.output;
  const CommandResult trained = run_mbmpo("train " + kTiny + " --iterations 8 --run-dir " + (dir / "trained").string());
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const double random_return = eval_return("--checkpoint " + (dir / "untrained" / "policy.safetensors").string());
  const double trained_return = eval_return("--checkpoint " + (dir / "trained" / "policy.safetensors").string());
  std::printf("inverted_pendulum return: untrained %.1f, after 8 iterations %.1f\n", random_return, trained_return);
  EXPECT_GT(trained_return, 2 * random_return + 10);
  // The run directory has everything the issue lists.
  for (const char* file : {"config.toml", "progress.csv", "progress.jsonl", "policy.safetensors", "checkpoints/latest"}) {
    EXPECT_TRUE(fs::exists(dir / "trained" / file)) << file;
  }
  const auto progress = rows(dir / "trained");
  ASSERT_EQ(progress.size(), 8u);
  for (const char* key : {"iteration", "real_steps", "return_pre_mean", "return_pre_std", "return_post_mean",
                          "imagined_return_pre", "imagined_return_post", "model_val_loss_0", "model_epochs_2",
                          "meta_kl", "step_accepted_fraction", "cg_residual", "seconds_fit_models", "seconds_cg"}) {
    EXPECT_TRUE(progress.back().contains(key)) << key;
  }
  EXPECT_LE(progress.back()["meta_kl"].get<double>(), 0.01 + 1e-9);
  // eval of the run directory (its latest checkpoint), with one adaptation step per model.
  const CommandResult adapted =
      run_mbmpo("eval --run-dir " + (dir / "trained").string() + " --episodes 3 --adapt --device " + device);
  EXPECT_EQ(adapted.exit_code, 0) << adapted.output;
  EXPECT_NE(adapted.output.find("after one adaptation step"), std::string::npos) << adapted.output;
  fs::remove_all(dir);
}

TEST_P(TrainBackends, ResumeAfterSigkillGivesTheUninterruptedResult) {
  const fs::path dir = this->dir("resume");
  const std::string full = (dir / "full").string(), killed = (dir / "killed").string();
  ASSERT_EQ(run_mbmpo("train " + kTiny + " --iterations 4 --run-dir " + full).exit_code, 0);

  // Start the same run, kill it with SIGKILL once its first checkpoint exists (mid-iteration 2).
  ASSERT_TRUE(sigkill_once_exists("train " + kTiny + " --iterations 4 --run-dir " + killed,
                                  fs::path(killed) / "checkpoints" / "latest"));
  std::printf("killed the run after %zu completed iteration(s)\n", rows(killed).size());

  const CommandResult resumed = run_mbmpo("train --resume --run-dir " + killed + " --quiet");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(read(fs::path(full) / "policy.safetensors"), read(fs::path(killed) / "policy.safetensors"));
  EXPECT_EQ(without_timings(rows(full)), without_timings(rows(killed)));
  // Resuming a finished run does nothing more; extending it runs the extra iterations.
  const CommandResult extended = run_mbmpo("train --resume --run-dir " + killed + " --iterations 5 --quiet");
  ASSERT_EQ(extended.exit_code, 0) << extended.output;
  EXPECT_EQ(rows(killed).size(), 5u);
  fs::remove_all(dir);
}

// A checkpoint records where its numbers were computed (backend, CPU instruction set); resuming on
// another path warns that the last bits may differ, and goes on. The same path says nothing.
TEST(Train, ResumingOnAnotherNumericPathWarns) {
  const fs::path dir = scratch("numeric_path");
  const std::string run = (dir / "run").string();
  ASSERT_EQ(run_mbmpo("train " + kTinySettings + " --device cpu --iterations 1 --quiet --run-dir " + run).exit_code, 0);
  const fs::path state = fs::path(run) / "checkpoints" / "iter-000001" / "state.json";
  nlohmann::json saved = nlohmann::json::parse(read(state));
  ASSERT_EQ(saved["numeric_path"]["backend"], "cpu");
  ASSERT_EQ(saved["numeric_path"]["cpu_arch"], mbmpo::cpu_arch_built());
  const CommandResult same = run_mbmpo("train --resume --iterations 2 --quiet --run-dir " + run);
  ASSERT_EQ(same.exit_code, 0) << same.output;
  EXPECT_EQ(same.output.find("warning"), std::string::npos) << same.output;

  const fs::path latest = fs::path(run) / "checkpoints" / "iter-000002" / "state.json";
  saved = nlohmann::json::parse(read(latest));
  saved["numeric_path"]["cpu_arch"] = "x86-64-v2";
  mbmpo::test::write_resealed_state(latest, saved);
  const CommandResult other = run_mbmpo("train --resume --iterations 3 --quiet --run-dir " + run);
  ASSERT_EQ(other.exit_code, 0) << other.output;
  EXPECT_NE(other.output.find("warning"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("x86-64-v2"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("last bits"), std::string::npos) << other.output;
  EXPECT_EQ(rows(run).size(), 3u);
  fs::remove_all(dir);
}

TEST(Train, ConfigFileRoundTripsAndFlagsOverrideIt) {
  const fs::path dir = scratch("config");
  const std::string kTiny = kTinySettings + " --device cpu";
  ASSERT_EQ(run_mbmpo("train " + kTiny + " --iterations 0 --run-dir " + (dir / "a").string()).exit_code, 0);
  const CommandResult again = run_mbmpo("train --config " + (dir / "a" / "config.toml").string() +
                                        " --run-dir " + (dir / "b").string() + " --quiet");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(read(dir / "a" / "config.toml"), read(dir / "b" / "config.toml"));
  const CommandResult changed = run_mbmpo("train --config " + (dir / "a" / "config.toml").string() +
                                          " --max-kl 0.02 --run-dir " + (dir / "c").string() + " --quiet");
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  EXPECT_NE(read(dir / "c" / "config.toml").find("max-kl=0.02"), std::string::npos);
  const std::string help = run_mbmpo("train --help").output;
  for (const char* flag : {"--inner-lr", "--max-kl", "--meta-steps", "--model-hidden", "--preset", "--resume"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
  fs::remove_all(dir);
}

// The field table is the one list of settings: every field is a flag in `mbmpo train --help`, a
// key of config.json, and survives the JSON round trip with a value other than its default.
TEST(Train, EveryConfigFieldIsAFlagAndRoundTripsThroughJson) {
  mbmpo::TrainConfig changed;
  for (const mbmpo::TrainField& field : mbmpo::train_fields()) {
    std::visit(
        [&](auto member) {
          auto& value = changed.*member;
          using Value = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<Value, std::string>) {
            value = field.choices.empty() ? value + "_x" : field.choices.back();
          } else if constexpr (std::is_same_v<Value, std::vector<int>>) {
            value = {7, 5, 3};
          } else if constexpr (std::is_same_v<Value, bool>) {
            value = !value;
          } else {
            value = value + Value(3);
          }
        },
        field.member);
  }
  const nlohmann::json json = mbmpo::config_to_json(changed);
  const mbmpo::TrainConfig back = mbmpo::config_from_json(json);
  const std::string help = run_mbmpo("train --help").output;
  const mbmpo::TrainConfig defaults;
  for (const mbmpo::TrainField& field : mbmpo::train_fields()) {
    EXPECT_TRUE(json.contains(field.key)) << field.key;
    EXPECT_NE(help.find("--" + mbmpo::flag_name(field) + " "), std::string::npos) << field.key;
    std::visit(
        [&](auto member) {
          EXPECT_EQ(back.*member, changed.*member) << field.key;
          EXPECT_NE(changed.*member, defaults.*member) << field.key << " kept its default in this test";
        },
        field.member);
  }
  EXPECT_EQ(json.size(), mbmpo::train_fields().size());
  EXPECT_THROW(mbmpo::config_from_json({{"models", "five"}}), mbmpo::InputError);
}

// config.toml is TOML by toml++'s verdict, and each key means what its flag means: a syntax error,
// a duplicate key (also as its snake_case twin), an array for a single value, a wrong type, an
// unknown key or section are refused naming the key (or the line), exit 2, nothing written; a list
// of sizes is a TOML array and is kept whole.
TEST(Train, ConfigFileIsReadByTomlRulesAndEachKeyIsChecked) {
  const fs::path dir = scratch("config_toml");
  const std::string run = (dir / "run").string();
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"models = = 3", "bad.toml:2:"},
           {"models = 3\nmodels = 4", "models"},
           {"model-hidden = [8]\nmodel_hidden = [8]", "model_hidden: the key is given twice"},
           {"models = [3, 4]", "models is an array, but it must be an integer"},
           {"models = \"3\"", "models is a string, but it must be an integer"},
           {"iterations = 1.5", "iterations is a float, but it must be an integer"},
           {"tf32 = 1", "tf32 is an integer, but it must be true or false"},
           {"model-hidden = [64, \"x\"]", "model-hidden holds a string"},
           {"inner-lr = \"big\"", "inner-lr is a string"},
           {"inner-lr = 1e30", "inner-lr must be in [0, 10]"},
           {"iterations = -1", "iterations"},
           {"modles = 3", "modles: unknown key"},
           {"[other]\nmodels = 3", "'other' is a section outside [train]"},
           {"models =", "bad.toml:2:"}}) {
    {
      std::ofstream bad(dir / "bad.toml");
      bad << "[train]\n" << text << "\n";
    }
    const CommandResult result =
        run_mbmpo("train --env hopper --config " + (dir / "bad.toml").string() + " --run-dir " + run);
    EXPECT_EQ(result.exit_code, 2) << text << "\n" << result.output;
    EXPECT_NE(result.output.find(message), std::string::npos) << text << "\n" << result.output;
    EXPECT_FALSE(fs::exists(run)) << text;
  }
  {
    std::ofstream good(dir / "good.toml");
    good << "[train]\nenv = \"hopper\"\nmodel_hidden = [64, 32]\ninner-lr = 1\niterations = 0\n";
  }
  const CommandResult good = run_mbmpo("train --config " + (dir / "good.toml").string() + " --quiet --run-dir " + run);
  ASSERT_EQ(good.exit_code, 0) << good.output;
  const std::string written = read(fs::path(run) / "config.toml");
  EXPECT_NE(written.find("model-hidden=[64, 32]"), std::string::npos) << written;
  EXPECT_NE(written.find("inner-lr=1\n"), std::string::npos) << written;
  fs::remove_all(dir);
}

// What no run can use is refused before the run directory is made, naming the flag: a value past
// its field's range, a limit that a part would only meet deep inside the run, and a size whose
// memory the machine does not have (with both figures).
TEST(Train, ImpossibleSizesAreRefusedBeforeAnythingIsWritten) {
  const fs::path dir = scratch("impossible");
  const std::string run = (dir / "run").string();
  for (const auto& [flags, message] : std::vector<std::pair<std::string, std::string>>{
           {"--models 65", "models must be in [1, 64], got 65"},
           {"--models 2147483647", "models must be in [1, 64]"},
           {"--dataset-capacity 1", "dataset-capacity must be >= 2"},
           {"--model-lr 1e30", "model-lr must be in (0, 1]"},
           {"--model-hidden 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1", "at most 15 hidden layers"},
           {"--policy-hidden 512", "hidden sizes must be in [1, 256]"},
           {"--meta-batch 100000 --rollouts-per-task 1000000", "needs at least"},
           {"--model-hidden 1000000,1000000", "needs at least"}}) {
    const CommandResult result = run_mbmpo("train --env hopper --device cpu " + flags + " --run-dir " + run);
    EXPECT_EQ(result.exit_code, 2) << flags << "\n" << result.output;
    EXPECT_NE(result.output.find(message), std::string::npos) << flags << "\n" << result.output;
    EXPECT_FALSE(fs::exists(run)) << flags;
  }
  // A run directory that is a file, or under one.
  { std::ofstream file(dir / "file"); }
  for (const std::string& path : {(dir / "file").string(), (dir / "file" / "run").string()}) {
    for (const std::string resume : {"", " --resume"}) {
      const CommandResult result = run_mbmpo("train --env hopper --device cpu --run-dir " + path + resume);
      EXPECT_EQ(result.exit_code, 2) << path << resume << "\n" << result.output;
      EXPECT_NE(result.output.find("is a file, not a directory"), std::string::npos) << result.output;
    }
  }
  fs::remove_all(dir);
}

TEST(Train, CpuPresetSetsItsSizesAndFlagsStillWin) {
  const fs::path dir = scratch("cpu_preset");
  ASSERT_EQ(run_mbmpo("train --env hopper --preset cpu --device cpu --iterations 0 --quiet --run-dir " +
                      (dir / "a").string()).exit_code, 0);
  const std::string config = read(dir / "a" / "config.toml");
  for (const char* line : {"model-hidden=[256, 256]", "model-max-epochs=100", "meta-steps=10"}) {
    EXPECT_NE(config.find(line), std::string::npos) << line << " missing from\n" << config;
  }
  // The meta-steps follow the task, named by --env (a Gymnasium id too) or by the config file.
  ASSERT_EQ(run_mbmpo("train --env HalfCheetah-v5 --preset cpu --device cpu --iterations 0 --quiet --run-dir " +
                      (dir / "cheetah").string()).exit_code, 0);
  EXPECT_NE(read(dir / "cheetah" / "config.toml").find("meta-steps=30"), std::string::npos);
  {
    std::ofstream file(dir / "walker.toml");
    file << "[train]\nenv = \"walker2d\"\n";
  }
  ASSERT_EQ(run_mbmpo("train --config " + (dir / "walker.toml").string() +
                      " --preset cpu --device cpu --iterations 0 --quiet --run-dir " + (dir / "walker").string())
                .exit_code, 0);
  EXPECT_NE(read(dir / "walker" / "config.toml").find("meta-steps=15"), std::string::npos);
  const CommandResult help = run_mbmpo("train --help");
  EXPECT_NE(help.output.find("hopper 10"), std::string::npos) << help.output;
  ASSERT_EQ(run_mbmpo("train --env hopper --preset cpu --meta-steps 4 --device cpu --iterations 0 --quiet --run-dir " +
                      (dir / "b").string()).exit_code, 0);
  EXPECT_NE(read(dir / "b" / "config.toml").find("meta-steps=4"), std::string::npos);
  const CommandResult bad = run_mbmpo("train --env hopper --preset gpu --run-dir " + (dir / "c").string());
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("preset"), std::string::npos) << bad.output;
  fs::remove_all(dir);
}

TEST_P(TrainBackends, BadInputIsNamedWithExitCode2AndWritesNothing) {
  const fs::path dir = this->dir("bad");
  const std::string run = (dir / "run").string();
  auto expect_bad = [&](const std::string& arguments, const std::string& message) {
    const CommandResult result = run_mbmpo(arguments);
    EXPECT_EQ(result.exit_code, 2) << arguments << "\n" << result.output;
    EXPECT_NE(result.output.find(message), std::string::npos) << arguments << "\n" << result.output;
    EXPECT_EQ(result.output.find("terminate called"), std::string::npos) << result.output;
  };
  expect_bad("train --env nope --run-dir " + run, "unknown task 'nope'");
  expect_bad("train " + kTiny + " --horizon 0 --run-dir " + run, "horizon must be in [1, 1000000], got 0");
  expect_bad("train " + kTiny + " --model-validation 1.5 --run-dir " + run, "model-validation");
  expect_bad("train " + kTiny + " --discount 2 --run-dir " + run, "discount");
  expect_bad("train " + kTiny + " --rollouts-per-task -3 --run-dir " + run, "rollouts-per-task");
  expect_bad("train " + kTiny + " --imagined-horizon 0 --run-dir " + run, "imagined-horizon");
  expect_bad("train " + kTiny + " --no-such-flag 1 --run-dir " + run, "no-such-flag");
  expect_bad("train " + kTiny + " --policy-hidden 32,x --run-dir " + run, "policy-hidden");
  EXPECT_FALSE(fs::exists(run));
  {
    std::ofstream bad(dir / "bad.toml");
    bad << "[train]\nenv=\"hopper\"\nno-such-key=1\n";
  }
  expect_bad("train --config " + (dir / "bad.toml").string() + " --run-dir " + run, "no-such-key");
  expect_bad("train --resume --run-dir " + (dir / "missing").string(), "does not exist");

  // An existing run is never overwritten; a damaged checkpoint is named on resume.
  ASSERT_EQ(run_mbmpo("train " + kTiny + " --iterations 1 --run-dir " + run).exit_code, 0);
  const std::string before = read(fs::path(run) / "progress.jsonl");
  expect_bad("train " + kTiny + " --iterations 1 --run-dir " + run, "already holds a run");
  EXPECT_EQ(read(fs::path(run) / "progress.jsonl"), before);
  const fs::path checkpoint = fs::path(run) / "checkpoints" / "iter-000001";
  const std::string models = read(checkpoint / "models.safetensors");
  {
    std::ofstream truncated(checkpoint / "models.safetensors", std::ios::binary | std::ios::trunc);
    truncated << models.substr(0, models.size() / 2);
  }
  expect_bad("train --resume --run-dir " + run + " --iterations 2", "models.safetensors");
  EXPECT_EQ(read(fs::path(run) / "progress.jsonl"), before);
  expect_bad("train --resume --run-dir " + run + " --iterations 2 --models 4", "models");
  expect_bad("eval --checkpoint " + (dir / "nothing").string(), "no such run directory");
  fs::remove_all(dir);
}

// A flag's value means what it says or is refused, naming the flag, with exit 2 and nothing
// written: no empty value read as 0 or false, no wrapped or saturated number, no integer taken as a
// boolean, no list element dropped.
TEST(Train, FlagValuesMeanWhatTheySayOrAreRefused) {
  const fs::path dir = scratch("strict_values");
  const std::string run = (dir / "run").string();
  const std::string tiny = kTinySettings + " --device cpu --iterations 0";
  struct Case {
    std::string arguments, flag, message;
  };
  const std::vector<Case> cases = {
      {"train " + tiny + " --iterations ''", "--iterations", "empty"},
      {"train " + tiny + " --tf32 ''", "--tf32", "empty"},
      {"train " + tiny + " --max-kl ''", "--max-kl", "empty"},
      {"train " + tiny + " --seed -1", "--seed", "not a non-negative integer"},
      {"train " + tiny + " --seed 99999999999999999999", "--seed", "out of range"},
      {"train " + tiny + " --models 99999999999", "--models", "out of range"},
      {"train " + tiny + " --iterations 3.5", "--iterations", "not an integer"},
      {"train " + tiny + " --iterations 0x10", "--iterations", "not an integer"},
      {"train " + tiny + " --first-order 2", "--first-order", "not true or false"},
      {"train " + tiny + " --cuda-graph maybe", "--cuda-graph", "not true or false"},
      {"train " + tiny + " --inner-lr abc", "--inner-lr", "not a number"},
      {"train " + tiny + " --inner-lr 1e-3x", "--inner-lr", "not a number"},
      {"train " + tiny + " --max-kl inf", "--max-kl", "not a finite number"},
      {"train " + tiny + " --model-lr nan", "--model-lr", "not a finite number"},
      {"train " + tiny + " --model-hidden 64,", "model-hidden", "expected sizes"},
      {"train " + tiny + " --policy-hidden ,32", "policy-hidden", "expected sizes"},
      {"train " + tiny + " --seeds 1,", "--seeds", "expected seeds"},
      {"eval --checkpoint " + run + " --episodes ''", "--episodes", "empty"},
      {"eval --checkpoint " + run + " --seed -5", "--seed", "not a non-negative integer"},
      {"collect --env hopper --out " + (dir / "c.csv").string() + " --seed -1", "--seed", "not a non-negative integer"},
  };
  for (const Case& c : cases) {
    const CommandResult result = run_mbmpo(c.arguments + " --run-dir " + run);
    EXPECT_EQ(result.exit_code, 2) << c.arguments << "\n" << result.output;
    EXPECT_NE(result.output.find(c.flag), std::string::npos) << c.arguments << "\n" << result.output;
    EXPECT_NE(result.output.find(c.message), std::string::npos) << c.arguments << "\n" << result.output;
    EXPECT_FALSE(fs::exists(run)) << c.arguments;
    EXPECT_FALSE(fs::exists(dir / "c.csv")) << c.arguments;
  }
  // Good values of the same kinds still pass, and a range that ends at the largest seed ends.
  const CommandResult good = run_mbmpo("train " + tiny + " --first-order yes --inner-lr 2e-3 --seed 18446744073709551615 "
                                       "--quiet --run-dir " + run);
  EXPECT_EQ(good.exit_code, 0) << good.output;
  const CommandResult top = run_mbmpo("train " + tiny + " --seeds 18446744073709551614-18446744073709551615 --quiet "
                                      "--run-dir " + (dir / "top").string());
  EXPECT_EQ(top.exit_code, 0) << top.output;
  EXPECT_TRUE(fs::exists(dir / "top" / "seed-18446744073709551615"));
  fs::remove_all(dir);
}

TEST_P(TrainBackends, SmokePresetRunsHalfCheetah) {
  const fs::path dir = this->dir("smoke");
  const auto start = std::chrono::steady_clock::now();
  const CommandResult run = run_mbmpo("train --env half_cheetah --preset smoke --device " + device + " --run-dir " +
                                      (dir / "run").string());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::printf("smoke preset: %.1f s\n%s", seconds, run.output.c_str());
  const auto progress = rows(dir / "run");
  ASSERT_EQ(progress.size(), 3u);
  EXPECT_NE(run.output.find("iter 3/3"), std::string::npos);
  fs::remove_all(dir);
}

// A (256, 256) policy, wider than the per-thread policy kernels could hold, through one smoke
// iteration: the step is accepted and the saved policy has the wide layout.
TEST_P(TrainBackends, WidePolicyTrainsWithTheSmokePreset) {
  const fs::path dir = this->dir("wide");
  const CommandResult run = run_mbmpo("train --env half_cheetah --preset smoke --iterations 1 --policy-hidden 256,256 "
                                      "--device " + device + " --run-dir " + (dir / "run").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto progress = rows(dir / "run");
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_GT(progress[0].at("step_accepted_fraction").get<double>(), 0.0) << progress[0].dump();
  EXPECT_GT(progress[0].at("meta_kl").get<double>(), 0.0) << progress[0].dump();
  const std::int64_t P = mbmpo::PolicyLayout(17, 6, {256, 256}).parameter_count();
  const std::vector<float> theta = mbmpo::load_saved_policy((dir / "run" / "policy.safetensors").string()).theta;
  ASSERT_EQ(std::int64_t(theta.size()), P);
  for (float value : theta) ASSERT_TRUE(std::isfinite(value));
  fs::remove_all(dir);
}

// Two runs with one seed write the same bits: policy, models (with Adam state), dataset and
// progress rows (timings aside). On CUDA this needs every reduction in a fixed order.
TEST_P(TrainBackends, TwoRunsWithOneSeedGiveIdenticalFiles) {
  const fs::path dir = this->dir("twice");
  for (const char* name : {"a", "b"}) {
    const CommandResult run = run_mbmpo("train " + kTiny + " --iterations 2 --run-dir " + (dir / name).string());
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  for (const char* file : {"policy.safetensors", "checkpoints/iter-000002/models.safetensors",
                           "checkpoints/iter-000002/policy.safetensors", "checkpoints/iter-000002/dataset.bin"}) {
    EXPECT_EQ(read(dir / "a" / file), read(dir / "b" / file)) << file << " differs between two runs";
  }
  EXPECT_EQ(without_timings(rows(dir / "a")), without_timings(rows(dir / "b")));
  fs::remove_all(dir);
}

// A safetensors file's tensors (header entries and data) without its metadata, which records the
// run's configuration.
std::string tensors_of(const fs::path& path) {
  const std::string bytes = read(path);
  if (bytes.size() < 8) return bytes;
  std::uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(bytes[i]);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_size));
  header.erase("__metadata__");
  return header.dump() + bytes.substr(8 + header_size);
}

// The CPU backend's results do not depend on its thread count (it splits work by shape, never by
// team size), so the team may shrink while other processes hold the cores: one thread and three
// threads (more than CI's cores) give the same policy, models, dataset and progress rows.
TEST(Train, CpuThreadCountChangesNoBit) {
  const fs::path dir = scratch("cpu_threads");
  for (const char* threads : {"1", "3"}) {
    const CommandResult run = run_mbmpo("train " + kTinySettings + " --device cpu --iterations 2 --cpu-threads " +
                                        threads + " --run-dir " + (dir / threads).string());
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  for (const char* file : {"policy.safetensors", "checkpoints/iter-000002/models.safetensors"}) {
    EXPECT_EQ(tensors_of(dir / "1" / file), tensors_of(dir / "3" / file)) << file << " differs";
  }
  EXPECT_EQ(read(dir / "1/checkpoints/iter-000002/dataset.bin"), read(dir / "3/checkpoints/iter-000002/dataset.bin"));
  EXPECT_EQ(without_timings(rows(dir / "1")), without_timings(rows(dir / "3")));
  fs::remove_all(dir);
}

// `--seeds 0-2` in one process writes, for each seed, the files of a separate run with --seed S
// (policy, models with Adam state, dataset, progress rows). Resuming the group after one
// iteration gives the same files as running it through.
TEST_P(TrainBackends, SeedsInOneProcessEqualSeparateRuns) {
  const fs::path dir = this->dir("seeds");
  // --threads 1: two seeds' real episodes at once on two cores (results do not depend on it).
  CommandResult run = run_mbmpo("train " + kTiny + " --iterations 2 --threads 1 --seeds 0-2 --run-dir " +
                                (dir / "group").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = run_mbmpo("train " + kTiny + " --iterations 1 --seeds 0-2 --run-dir " + (dir / "resumed").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  run = run_mbmpo("train --resume --iterations 2 --quiet --run-dir " + (dir / "resumed").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  // A group killed after seed 0's checkpoint of iteration 2 but before the others': seeds 1 and 2
  // are one iteration behind. Resumed, they catch up together, then all three run iteration 3.
  run = run_mbmpo("train " + kTiny + " --iterations 2 --seeds 0-2 --run-dir " + (dir / "apart").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* seed : {"seed-1", "seed-2"}) {
    std::ofstream(dir / "apart" / seed / "checkpoints" / "latest") << "iter-000001\n";
  }
  run = run_mbmpo("train --resume --iterations 3 --quiet --run-dir " + (dir / "apart").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* seed : {"0", "1", "2"}) {
    const fs::path alone = dir / ("alone" + std::string(seed));
    run = run_mbmpo("train " + kTiny + " --iterations 2 --seed " + seed + " --run-dir " + alone.string());
    ASSERT_EQ(run.exit_code, 0) << run.output;
    for (const fs::path& group : {dir / "group" / ("seed-" + std::string(seed)), dir / "resumed" / ("seed-" + std::string(seed))}) {
      SCOPED_TRACE(group.string());
      for (const char* file : {"policy.safetensors", "checkpoints/iter-000002/models.safetensors"}) {
        EXPECT_EQ(tensors_of(group / file), tensors_of(alone / file)) << file;
      }
      EXPECT_EQ(read(group / "checkpoints/iter-000002/dataset.bin"), read(alone / "checkpoints/iter-000002/dataset.bin"));
      EXPECT_EQ(without_timings(rows(group)), without_timings(rows(alone)));
    }
    run = run_mbmpo("train --resume --iterations 3 --quiet --run-dir " + alone.string());
    ASSERT_EQ(run.exit_code, 0) << run.output;
    const fs::path apart = dir / "apart" / ("seed-" + std::string(seed));
    SCOPED_TRACE(apart.string());
    EXPECT_EQ(tensors_of(apart / "policy.safetensors"), tensors_of(alone / "policy.safetensors"));
    EXPECT_EQ(tensors_of(apart / "checkpoints/iter-000003/models.safetensors"),
              tensors_of(alone / "checkpoints/iter-000003/models.safetensors"));
    EXPECT_EQ(without_timings(rows(apart)), without_timings(rows(alone)));
  }
  fs::remove_all(dir);
}

// A group killed with SIGKILL once its first seed has a checkpoint, then resumed, writes the
// files of the uninterrupted group (the kill may land between two seeds' checkpoints).
TEST_P(TrainBackends, SeedsResumedAfterSigkillGiveTheUninterruptedFiles) {
  const fs::path dir = this->dir("group_resume");
  const std::string group = kTiny + " --iterations 3 --seeds 0-2 --run-dir ";
  CommandResult run = run_mbmpo("train " + group + (dir / "full").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  ASSERT_TRUE(sigkill_once_exists("train " + group + (dir / "killed").string(),
                                  dir / "killed" / "seed-0" / "checkpoints" / "latest"))
      << "the group ended before its first checkpoint";
  for (const char* seed : {"seed-0", "seed-1", "seed-2"}) {
    std::printf("%s: killed after %zu iteration(s)\n", seed, rows(dir / "killed" / seed).size());
  }
  run = run_mbmpo("train --resume --quiet --run-dir " + (dir / "killed").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* seed : {"seed-0", "seed-1", "seed-2"}) {
    SCOPED_TRACE(seed);
    EXPECT_EQ(read(dir / "full" / seed / "policy.safetensors"), read(dir / "killed" / seed / "policy.safetensors"));
    EXPECT_EQ(without_timings(rows(dir / "full" / seed)), without_timings(rows(dir / "killed" / seed)));
  }
  fs::remove_all(dir);
}

// half_cheetah never ends an episode, so the seeds' datasets have one size and every minibatch of
// their one fit (DynamicsEnsemble::fit_together) is one call over all their models (inverted
// pendulum above: datasets of other sizes): still the files of separate runs.
TEST_P(TrainBackends, SeedsOfATaskThatNeverEndsFitTogetherAndEqualSeparateRuns) {
  const fs::path dir = this->dir("seeds_fit_together");
  const std::string settings = "--env half_cheetah --random-steps 400 --horizon 50 --eval-episodes 2 --models 2 "
                               "--model-hidden 24,24 --model-max-epochs 15 --meta-batch 4 --rollouts-per-task 6 "
                               "--imagined-horizon 20 --meta-steps 3 --quiet --device " + device;
  CommandResult run = run_mbmpo("train " + settings + " --iterations 2 --seeds 3,5 --run-dir " + (dir / "group").string());
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* seed : {"3", "5"}) {
    const fs::path alone = dir / ("alone" + std::string(seed)), group = dir / "group" / ("seed-" + std::string(seed));
    run = run_mbmpo("train " + settings + " --iterations 2 --seed " + seed + " --run-dir " + alone.string());
    ASSERT_EQ(run.exit_code, 0) << run.output;
    SCOPED_TRACE(group.string());
    for (const char* file : {"policy.safetensors", "checkpoints/iter-000002/models.safetensors"}) {
      EXPECT_EQ(tensors_of(group / file), tensors_of(alone / file)) << file;
    }
    EXPECT_EQ(without_timings(rows(group)), without_timings(rows(alone)));
  }
  // One fit for both: each row carries that fit's time (separate fits would each have their own).
  const auto rows_3 = rows(dir / "group" / "seed-3"), rows_5 = rows(dir / "group" / "seed-5");
  ASSERT_EQ(rows_3.size(), rows_5.size());
  for (std::size_t i = 0; i < rows_3.size(); ++i) {
    EXPECT_EQ(rows_3[i]["seconds_fit_models"], rows_5[i]["seconds_fit_models"]) << "iteration " << i;
  }
  fs::remove_all(dir);
}

TEST(Train, BadSeedListsAreNamedWithExitCode2AndWriteNothing) {
  const fs::path dir = scratch("bad_seeds");
  const std::string kTiny = kTinySettings + " --device cpu --run-dir " + (dir / "run").string();
  for (const auto& [flags, message] : std::vector<std::pair<std::string, std::string>>{
           {"--seeds ''", "--seeds: no seeds given"},
           {"--seeds 1,1", "seed 1 is listed twice"},
           {"--seeds 0-x", "expected seeds like 0-4"},
           {"--seeds 3-1", "runs backwards"},
           {"--seeds 0-2 --seed 4", "give --seed or --seeds, not both"}}) {
    const CommandResult run = run_mbmpo("train " + kTiny + " " + flags);
    EXPECT_EQ(run.exit_code, 2) << flags << ": " << run.output;
    EXPECT_NE(run.output.find(message), std::string::npos) << flags << ": " << run.output;
    EXPECT_FALSE(fs::exists(dir / "run")) << flags;
  }
  fs::remove_all(dir);
}

// After a meta-step has run, later meta-steps of the same iteration allocate no buffer (the memory
// layer counts every Tensor allocation, host and device): rollouts, advantages, the inner step and
// the meta-update work in buffers the trainer, the rollout runner and the meta-objective keep.
TEST_P(TrainBackends, MetaStepsAfterTheFirstAllocateNothing) {
  const fs::path dir = this->dir("allocations");
  mbmpo::TrainConfig config;
  config.env = "inverted_pendulum";
  config.device = device;
  config.iterations = 2;
  config.random_steps = 400;
  config.horizon = 100;
  config.eval_episodes = 2;
  config.models = 3;
  config.model_hidden = {32, 32};
  config.model_max_epochs = 5;
  config.meta_batch = 6;
  config.rollouts_per_task = 10;
  config.imagined_horizon = 30;
  config.meta_steps = 4;
  config.inner_lr = 0.05;
  config.fisher_subsample = 0.5;  // its weights are kept too
  mbmpo::Context context(GetParam());
  mbmpo::Trainer trainer(context, config, (dir / "run").string(), false);
  std::vector<std::vector<std::int64_t>> counts(config.iterations);
  trainer.run({}, [&](int iteration, int) {
    counts.at(iteration).push_back(mbmpo::memory::allocation_count(GetParam()));
  });
  for (int iteration = 0; iteration < config.iterations; ++iteration) {
    ASSERT_EQ(counts[iteration].size(), std::size_t(config.meta_steps));
    for (int step = 1; step < config.meta_steps; ++step) {
      EXPECT_EQ(counts[iteration][step], counts[iteration][0])
          << "meta-step " << step << " of iteration " << iteration << " allocated "
          << counts[iteration][step] - counts[iteration][step - 1] << " buffer(s)";
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Backends, TrainBackends, ::testing::Values(Backend::cpu, Backend::cuda),
                         mbmpo::test::backend_param_name);

// One whole iteration on CUDA against the CPU backend, on a task without terminations (swimmer,
// so imagined returns are smooth in the models' weights) and without early stopping (so both
// fits run the same epochs). The real data are the same bits on both (random actions on CPU
// MuJoCo); what differs is float rounding in the GEMMs and sums, grown through 20 epochs of Adam,
// two imagined rollouts and two meta-steps. Tolerances: validation losses 1e-3 relative, imagined
// returns 1e-2 relative (+1e-3), theta within 2 % of the size of the step the CPU took.
TEST(Train, OneIterationOnCudaMatchesTheCpuBackend) {
  MBMPO_REQUIRE_BACKEND(Backend::cuda);
  const fs::path dir = scratch("cpu_vs_cuda");
  const std::string settings =
      "--env swimmer --random-steps 600 --horizon 100 --eval-episodes 1 --models 2 --model-hidden 48,48 "
      "--model-max-epochs 20 --model-early-stopping false --meta-batch 4 --rollouts-per-task 8 "
      "--imagined-horizon 25 --meta-steps 2 --inner-lr 0.05 --quiet";
  for (const char* device : {"cpu", "cuda"}) {
    const CommandResult run = run_mbmpo("train " + settings + " --iterations 1 --device " + device +
                                        " --run-dir " + (dir / device).string());
    ASSERT_EQ(run.exit_code, 0) << device << "\n" << run.output;
  }
  const CommandResult start = run_mbmpo("train " + settings + " --iterations 0 --device cpu --run-dir " +
                                        (dir / "start").string());
  ASSERT_EQ(start.exit_code, 0) << start.output;

  const nlohmann::json cpu = rows(dir / "cpu").at(0), cuda = rows(dir / "cuda").at(0);
  EXPECT_EQ(cpu["real_steps"], cuda["real_steps"]);
  for (int m = 0; m < 2; ++m) {
    const std::string key = "model_val_loss_" + std::to_string(m);
    const double expected = cpu[key].get<double>();
    EXPECT_NEAR(cuda[key].get<double>(), expected, 1e-3 * std::abs(expected)) << key;
    EXPECT_EQ(cpu["model_epochs_" + std::to_string(m)], cuda["model_epochs_" + std::to_string(m)]);
  }
  for (const char* key : {"imagined_return_pre", "imagined_return_post"}) {
    const double expected = cpu[key].get<double>();
    EXPECT_NEAR(cuda[key].get<double>(), expected, 1e-2 * std::abs(expected) + 1e-3) << key;
  }
  EXPECT_EQ(cpu["step_accepted_fraction"], cuda["step_accepted_fraction"]);
  const std::int64_t P = mbmpo::PolicyLayout(8, 2, {32, 32}).parameter_count();  // swimmer's policy
  auto theta = [&](const char* run) {
    const std::vector<float> values = mbmpo::load_saved_policy((dir / run / "policy.safetensors").string()).theta;
    EXPECT_EQ(std::int64_t(values.size()), P);
    return values;
  };
  const std::vector<float> theta0 = theta("start"), on_cpu = theta("cpu"), on_cuda = theta("cuda");
  ASSERT_EQ(on_cpu.size(), on_cuda.size());
  double step = 0, difference = 0;
  for (std::size_t p = 0; p < on_cpu.size(); ++p) {
    step = std::max(step, std::abs(double(on_cpu[p]) - theta0[p]));
    difference = std::max(difference, std::abs(double(on_cuda[p]) - on_cpu[p]));
  }
  std::printf("theta: largest CPU step %.3g, largest CPU-CUDA difference %.3g\n", step, difference);
  EXPECT_GT(step, 0.0) << "the CPU run took no step: the comparison would prove nothing";
  EXPECT_LE(difference, 0.02 * step + 1e-6);
  fs::remove_all(dir);
}

}  // namespace
