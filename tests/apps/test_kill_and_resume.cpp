// A small run killed with SIGKILL at ten moments spread over its whole length (before its first
// checkpoint, in the middle of checkpoint writes, between a checkpoint and the row that follows it,
// just before the final policy) and then resumed writes the files of the uninterrupted run, byte
// for byte (the progress rows without their timings). The moments are named kill points
// (host/core/kill_point.hpp), so each kill lands where it is meant to.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "backend_test.hpp"
#include "run_files.hpp"
#include "run_mbmpo.hpp"

namespace {

using namespace mbmpo::test;
using mbmpo::Backend;

struct Moment {
  const char* kill_at;  // MBMPO_KILL_AT: a kill point and which pass of it
  const char* when;
};

// Three iterations; the points are passed in this order.
const std::vector<Moment> kMoments = {
    {"iteration:1", "before the first collection (the run directory just made)"},
    {"fitted:1", "after the first model fit"},
    {"row-written:1", "after the first row, before the first checkpoint"},
    {"checkpoint-policy:1", "in the first checkpoint write, after its policy file"},
    {"checkpoint-renamed:1", "after the first checkpoint's rename, before checkpoints/latest names it"},
    {"meta-step:6", "in the second iteration's meta-steps"},
    {"checkpoint-models:2", "in the second checkpoint write, after its models file"},
    {"checkpoint-saved:2", "after the second checkpoint, before its row gets its timings"},
    {"checkpoint-dataset:3", "in the last checkpoint write, after its dataset file"},
    {"before-final-policy:1", "after the last checkpoint, before the final policy"},
};

class KillAndResume : public ::testing::TestWithParam<Backend> {};

TEST_P(KillAndResume, TenMomentsEachResumeToTheUninterruptedFiles) {
  MBMPO_REQUIRE_BACKEND(GetParam());
  const std::string device = mbmpo::to_string(GetParam());
  const fs::path dir = scratch("kill_and_resume_" + device);
  const std::string run = "train " + kTinySettings + " --iterations 3 --device " + device + " --run-dir ";
  const CommandResult full = run_mbmpo(run + (dir / "full").string());
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const auto expected_files = files_under(dir / "full");
  const auto expected_rows = without_timings(rows(dir / "full"));

  for (std::size_t i = 0; i < kMoments.size(); ++i) {
    const Moment& moment = kMoments[i];
    SCOPED_TRACE(std::string("killed ") + moment.when + " (MBMPO_KILL_AT=" + moment.kill_at + ")");
    const fs::path killed = dir / ("killed-" + std::to_string(i));
    const CommandResult interrupted =
        run_mbmpo(run + killed.string(), "MBMPO_KILL_AT=" + std::string(moment.kill_at));
    // 137: the shell that ran it reports the SIGKILL as 128 + 9.
    ASSERT_TRUE(interrupted.exit_code == 137 || interrupted.exit_code == -1)
        << "the run was not killed (exit code " << interrupted.exit_code << "): " << interrupted.output;
    const CommandResult resumed = run_mbmpo("train --resume --quiet --run-dir " + killed.string());
    ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
    auto files = files_under(killed);
    EXPECT_EQ(without_timings(rows(killed)), expected_rows);
    for (const auto& [name, bytes] : expected_files) {
      if (name.rfind("progress.", 0) == 0) continue;  // compared as rows: they hold timings
      ASSERT_TRUE(files.count(name)) << name << " is missing after the resume";
      EXPECT_TRUE(files.at(name) == bytes) << name << " differs from the uninterrupted run's";
      files.erase(name);
    }
    files.erase("progress.jsonl");
    files.erase("progress.csv");
    for (const auto& extra : files) ADD_FAILURE() << extra.first << " is left over after the resume";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, KillAndResume, ::testing::Values(Backend::cpu, Backend::cuda),
                         mbmpo::test::backend_param_name);

}  // namespace
