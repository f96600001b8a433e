// The `mbmpo` binary as a user runs it.
#include <gtest/gtest.h>

#include "host/core/cpu_isa.hpp"
#include "run_mbmpo.hpp"
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <vector>
#include <nlohmann/json.hpp>
#include <string>

namespace {

using mbmpo::test::CommandResult;
using mbmpo::test::run_mbmpo;

TEST(Cli, InfoPrintsBuildAndDevice) {
  const CommandResult run = run_mbmpo("info");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("mujoco"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("cuda device"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("default device"), std::string::npos) << run.output;
}

TEST(Cli, InfoJsonIsMachineReadable) {
  const CommandResult run = run_mbmpo("info --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const nlohmann::json info = nlohmann::json::parse(run.output);
  EXPECT_EQ(info["mujoco_version"], "2.2.2");
  EXPECT_EQ(info["cpu_arch"], mbmpo::cpu_arch_built());
  EXPECT_FALSE(info["cpu_isa"].get<std::string>().empty());
  EXPECT_EQ(info["cpu_supports"], mbmpo::cpu_level_supported());
  EXPECT_TRUE(info["cuda_device_usable"].is_boolean());
  if (info["cuda_device_usable"].get<bool>()) {
    EXPECT_TRUE(info.contains("cuda_device"));
    EXPECT_EQ(info["default_device"], "cuda");
  } else {
    EXPECT_FALSE(info["cuda_unusable_reason"].get<std::string>().empty());
    EXPECT_EQ(info["default_device"], "cpu");
  }
}

// A binary on a CPU without its build's instructions stops at start-up with one line that names
// them and how to rebuild, exit 2, before anything else has run (never SIGILL). The CPU is made
// to look one level below the build's.
TEST(Cli, ACpuWithoutTheBuildsInstructionsIsRefusedInOneLine) {
  const std::string built = mbmpo::cpu_arch_built();
  const std::string below = built == "x86-64-v4" ? "x86-64-v3" : built == "x86-64-v3" ? "x86-64-v2" : "";
  if (below.empty()) GTEST_SKIP() << "built for '" << built << "': no level to check against";
  setenv("MBMPO_PRETEND_CPU_LEVEL", below.c_str(), 1);
  const CommandResult run = run_mbmpo("info");
  unsetenv("MBMPO_PRETEND_CPU_LEVEL");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_EQ(std::count(run.output.begin(), run.output.end(), '\n'), 1) << run.output;
  EXPECT_NE(run.output.find(built == "x86-64-v4" ? "AVX-512" : "AVX2/FMA"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("-DMBMPO_CPU_ARCH=" + below), std::string::npos) << run.output;
  // The level itself, or a higher one, runs.
  setenv("MBMPO_PRETEND_CPU_LEVEL", built.c_str(), 1);
  const CommandResult same = run_mbmpo("info");
  unsetenv("MBMPO_PRETEND_CPU_LEVEL");
  EXPECT_EQ(same.exit_code, 0) << same.output;
}

TEST(Cli, BadInputExitsTwoWithAMessage) {
  const CommandResult unknown_flag = run_mbmpo("info --bogus");
  EXPECT_EQ(unknown_flag.exit_code, 2) << unknown_flag.output;
  EXPECT_NE(unknown_flag.output.find("--bogus"), std::string::npos) << unknown_flag.output;

  const CommandResult unknown_command = run_mbmpo("trian --env hopper");
  EXPECT_EQ(unknown_command.exit_code, 2) << unknown_command.output;
  EXPECT_NE(unknown_command.output.find("unknown command 'trian'"), std::string::npos) << unknown_command.output;
  EXPECT_NE(unknown_command.output.find("train"), std::string::npos) << unknown_command.output;

  const CommandResult no_command = run_mbmpo("");
  EXPECT_EQ(no_command.exit_code, 2) << no_command.output;
}

TEST(Cli, HelpExitsZero) {
  const CommandResult run = run_mbmpo("--help");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("info"), std::string::npos) << run.output;
}

}  // namespace

namespace {

std::vector<std::string> split_line(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream stream(line);
  std::string field;
  while (std::getline(stream, field, ',')) fields.push_back(field);
  return fields;
}

TEST(Cli, EnvsListsEveryTask) {
  const CommandResult run = run_mbmpo("envs");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  for (const char* task : {"half_cheetah", "hopper", "walker2d", "ant", "swimmer", "inverted_pendulum"})
    EXPECT_NE(run.output.find(task), std::string::npos) << task;
}

TEST(Cli, CollectWritesOneRowPerTransition) {
  const std::string path = ::testing::TempDir() + "mbmpo_collect_test.csv";
  const CommandResult run =
      run_mbmpo("collect --env half_cheetah --episodes 3 --horizon 7 --threads 2 --seed 4 --out " + path);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::ifstream in(path);
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  const auto header = split_line(line);
  // episode, t, 17 obs, 6 act, reward, 17 next_obs, done, 9 qpos, 9 qvel
  ASSERT_EQ(header.size(), 2u + 17 + 6 + 1 + 17 + 1 + 9 + 9);
  EXPECT_EQ(header[0], "episode");
  EXPECT_EQ(header[2], "obs_0");
  EXPECT_EQ(header[19], "act_0");
  EXPECT_EQ(header[25], "reward");
  EXPECT_EQ(header[43], "done");
  EXPECT_EQ(header[44], "qpos_0");
  EXPECT_EQ(header.back(), "qvel_8");
  int rows = 0;
  while (std::getline(in, line)) {
    const auto fields = split_line(line);
    ASSERT_EQ(fields.size(), header.size()) << line;
    // obs_0 is qpos[1]: the x position is in the qpos columns only.
    EXPECT_NEAR(std::stod(fields[2]), std::stod(fields[45]), 1e-6);
    ++rows;
  }
  EXPECT_EQ(rows, 21);
  std::remove(path.c_str());
}

TEST(Cli, CollectRejectsBadInputWithoutWritingAFile) {
  const std::string path = ::testing::TempDir() + "mbmpo_collect_bad.csv";
  std::remove(path.c_str());
  for (const std::string& args : {std::string("collect --env cheetah --out ") + path,
                                  std::string("collect --env hopper --horizon 0 --out ") + path,
                                  std::string("collect --env hopper --episodes -2 --out ") + path,
                                  std::string("collect --env hopper --out /no/such/dir/x.csv"),
                                  std::string("collect --env hopper")}) {
    const CommandResult run = run_mbmpo(args);
    EXPECT_EQ(run.exit_code, 2) << args << "\n" << run.output;
    EXPECT_NE(run.output.find("error"), std::string::npos) << run.output;
  }
  EXPECT_FALSE(std::ifstream(path).good());
}

}  // namespace

namespace {
// The harness itself, not its speed: the env suite returns rows with positive rates and the JSON
// parses.
TEST(Cli, BenchEnvSuiteSmallWritesJsonRows) {
  const std::string path = ::testing::TempDir() + "mbmpo_bench_env.json";
  const CommandResult run = run_mbmpo("bench --suite env --scale small --json " + path);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::ifstream in(path);
  const nlohmann::json rows = nlohmann::json::parse(in);
  ASSERT_EQ(rows.size(), 9u);
  for (const auto& row : rows) {
    EXPECT_EQ(row["suite"], "env");
    EXPECT_GT(row["items_per_s"].get<double>(), 0.0);
    EXPECT_LE(row["p10_s"].get<double>(), row["p90_s"].get<double>());
  }
  std::remove(path.c_str());
  EXPECT_EQ(run_mbmpo("bench --suite nope").exit_code, 2);
}

// The harness of the kernel suites (not their speed): rows come back with the schema's fields.
TEST(Cli, BenchKernelSuitesSmallScaleProduceRows) {
  for (const std::string suite : {"model_fit", "predict", "rollout", "inner_step", "meta_update"}) {
    const std::string path = ::testing::TempDir() + "mbmpo_bench_" + suite + ".json";
    const CommandResult run = run_mbmpo("bench --suite " + suite + " --scale small --device cpu --json " + path);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::ifstream in(path);
    const nlohmann::json rows = nlohmann::json::parse(in);
    int cases = 0;
    for (const auto& row : rows) {
      if (row["suite"] == "peak") continue;
      ++cases;
      EXPECT_EQ(row["suite"], suite);
      EXPECT_EQ(row["device"], "cpu");
      for (const char* field : {"median_s", "p10_s", "p90_s", "items_per_s", "tflops", "pct_peak"}) {
        ASSERT_TRUE(row.contains(field)) << field;
        EXPECT_GT(row[field].get<double>(), 0.0) << field;
      }
    }
    EXPECT_GE(cases, 1) << suite;
    std::remove(path.c_str());
  }
  EXPECT_EQ(run_mbmpo("bench --suite predict --device tpu").exit_code, 2);
}

// The iteration suite times one whole training iteration and its phases (no FLOP count).
TEST(Cli, BenchIterationSuiteProducesPhaseRows) {
  const std::string path = ::testing::TempDir() + "mbmpo_bench_iteration.json";
  const CommandResult run = run_mbmpo("bench --suite iteration --scale small --device cpu --json " + path);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::ifstream in(path);
  const nlohmann::json rows = nlohmann::json::parse(in);
  int phases = 0;
  for (const auto& row : rows) {
    if (row["suite"] != "iteration") continue;
    ++phases;
    EXPECT_GE(row["median_s"].get<double>(), 0.0);
  }
  EXPECT_GE(phases, 8);
  std::remove(path.c_str());
}
}  // namespace
