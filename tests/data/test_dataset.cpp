#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "host/core/atomic_file.hpp"
#include "host/core/error.hpp"
#include "host/data/dataset.hpp"

namespace mbmpo {
namespace {

Episode random_episode(std::uint64_t index, int length, int obs_dim, int act_dim, std::mt19937& rng) {
  std::normal_distribution<float> normal(1.f, 2.f);
  Episode e;
  e.index = index, e.obs_dim = obs_dim, e.act_dim = act_dim, e.length = length;
  for (int t = 0; t < length; ++t) {
    for (int j = 0; j < obs_dim; ++j) e.obs.push_back(normal(rng)), e.next_obs.push_back(normal(rng));
    for (int j = 0; j < act_dim; ++j) e.act.push_back(normal(rng));
    e.reward.push_back(normal(rng));
    e.done.push_back(t + 1 == length);
  }
  return e;
}

// Mean and population std of column j of rows [first, last) of `rows`, in two passes.
std::pair<double, double> two_pass(const std::vector<std::vector<float>>& rows, int j) {
  double mean = 0;
  for (const auto& row : rows) mean += row[j];
  mean /= static_cast<double>(rows.size());
  double var = 0;
  for (const auto& row : rows) var += (row[j] - mean) * (row[j] - mean);
  return {mean, std::sqrt(var / static_cast<double>(rows.size()))};
}

TEST(Dataset, FifoEvictsOldestAndKeepsEpisodeBoundaries) {
  std::mt19937 rng(1);
  Dataset data(3, 2, 25);
  for (std::uint64_t e = 0; e < 4; ++e) data.add(random_episode(e, 10, 3, 2, rng));
  EXPECT_EQ(data.size(), 25u);
  EXPECT_EQ(data.total_added(), 40u);
  // 40 added, 25 kept: the oldest is episode 1, step 5.
  EXPECT_EQ(data.episode(0), 1u);
  EXPECT_EQ(data.step(0), 5);
  EXPECT_EQ(data.episode(24), 3u);
  EXPECT_EQ(data.step(24), 9);
  EXPECT_TRUE(data.done(24));
  EXPECT_TRUE(data.done(4));  // end of episode 1
  EXPECT_FALSE(data.done(5));
}

TEST(Dataset, RunningStatisticsMatchTwoPassThroughEvictions) {
  std::mt19937 rng(2);
  Dataset data(4, 3, 137);
  std::vector<std::vector<float>> obs, act, delta;  // everything added, in order
  for (std::uint64_t e = 0; e < 9; ++e) {
    const Episode ep = random_episode(e, 31, 4, 3, rng);
    data.add(ep);
    for (int t = 0; t < ep.length; ++t) {
      obs.emplace_back(ep.obs.begin() + t * 4, ep.obs.begin() + (t + 1) * 4);
      act.emplace_back(ep.act.begin() + t * 3, ep.act.begin() + (t + 1) * 3);
      std::vector<float> d(4);
      for (int j = 0; j < 4; ++j) d[j] = ep.next_obs[t * 4 + j] - ep.obs[t * 4 + j];
      delta.push_back(d);
    }
  }
  const auto keep = [](const std::vector<std::vector<float>>& rows) {
    return std::vector<std::vector<float>>(rows.end() - 137, rows.end());
  };
  const DatasetStats stats = data.stats();
  for (int j = 0; j < 4; ++j) {
    const auto [m, s] = two_pass(keep(obs), j);
    EXPECT_NEAR(stats.obs.mean[j], m, 1e-9);
    EXPECT_NEAR(stats.obs.std[j], s, 1e-9);
    const auto [dm, ds] = two_pass(keep(delta), j);
    EXPECT_NEAR(stats.delta.mean[j], dm, 1e-6);
    EXPECT_NEAR(stats.delta.std[j], ds, 1e-6);
  }
  for (int j = 0; j < 3; ++j) {
    const auto [m, s] = two_pass(keep(act), j);
    EXPECT_NEAR(stats.act.mean[j], m, 1e-9);
    EXPECT_NEAR(stats.act.std[j], s, 1e-9);
  }
}

TEST(Dataset, SplitSizesAndFreshnessPerModel) {
  std::mt19937 rng(3);
  Dataset data(2, 1, 1000);
  data.add(random_episode(0, 503, 2, 1, rng));
  const auto a = data.split(0.2, 7, 0, 0);
  EXPECT_EQ(a.validation.size(), 100u);
  EXPECT_EQ(a.train.size(), 403u);
  std::set<std::size_t> all(a.train.begin(), a.train.end());
  all.insert(a.validation.begin(), a.validation.end());
  EXPECT_EQ(all.size(), 503u);  // a partition: every index once
  EXPECT_EQ(*all.rbegin(), 502u);
  EXPECT_EQ(data.split(0.2, 7, 0, 0).validation, a.validation);  // deterministic
  EXPECT_NE(data.split(0.2, 7, 1, 0).validation, a.validation);  // another model
  EXPECT_NE(data.split(0.2, 7, 0, 1).validation, a.validation);  // another fit
  EXPECT_THROW(data.split(1.5, 7, 0, 0), InputError);
}

TEST(Dataset, RejectsNonFiniteData) {
  std::mt19937 rng(4);
  Dataset data(2, 1, 100);
  Episode e = random_episode(0, 5, 2, 1, rng);
  e.next_obs[3] = std::nanf("");
  EXPECT_THROW(data.add(e), InputError);
  EXPECT_EQ(data.size(), 0u);
}

class DatasetFile : public ::testing::Test {
 protected:
  // One file per test and process: ctest runs the cases of this fixture in parallel.
  std::string path = ::testing::TempDir() + "mbmpo_dataset_" +
                     ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
                     std::to_string(::getpid()) + ".bin";
  void TearDown() override { std::remove(path.c_str()); }
};

TEST_F(DatasetFile, SaveLoadRoundTrip) {
  std::mt19937 rng(5);
  Dataset data(3, 2, 50);
  for (std::uint64_t e = 0; e < 3; ++e) data.add(random_episode(e, 20, 3, 2, rng));
  data.save(path);
  const Dataset loaded = Dataset::load(path);
  ASSERT_EQ(loaded.size(), data.size());
  EXPECT_EQ(loaded.capacity(), 50u);
  EXPECT_EQ(loaded.total_added(), 60u);
  for (std::size_t i = 0; i < data.size(); ++i) {
    for (int j = 0; j < 3; ++j) ASSERT_EQ(loaded.obs(i)[j], data.obs(i)[j]);
    for (int j = 0; j < 3; ++j) ASSERT_EQ(loaded.next_obs(i)[j], data.next_obs(i)[j]);
    for (int j = 0; j < 2; ++j) ASSERT_EQ(loaded.act(i)[j], data.act(i)[j]);
    ASSERT_EQ(loaded.reward(i), data.reward(i));
    ASSERT_EQ(loaded.done(i), data.done(i));
    ASSERT_EQ(loaded.episode(i), data.episode(i));
  }
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(loaded.stats().obs.mean[j], data.stats().obs.mean[j], 1e-9);
}

TEST_F(DatasetFile, TruncatedCorruptAndMissingFilesGetClearErrors) {
  std::mt19937 rng(6);
  Dataset data(3, 2, 50);
  data.add(random_episode(0, 20, 3, 2, rng));
  data.save(path);
  std::string bytes = read_file(path);

  const auto expect_error = [&](const std::string& contents, const char* phrase) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
    try {
      Dataset::load(path);
      FAIL() << "no exception for " << phrase;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
  };
  expect_error(bytes.substr(0, bytes.size() / 2), "truncated");
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x40;
  expect_error(flipped, "corrupt");
  expect_error("not a dataset at all", "not an mbmpo dataset");
  expect_error("", "not an mbmpo dataset");
  std::remove(path.c_str());
  EXPECT_THROW(Dataset::load(path), InputError);
}

TEST_F(DatasetFile, SaveLeavesNoTemporaryFiles) {
  std::mt19937 rng(7);
  Dataset data(3, 2, 50);
  data.add(random_episode(0, 5, 3, 2, rng));
  data.save(path);
  data.save(path);  // overwrite in place
  EXPECT_EQ(Dataset::load(path).size(), 5u);
}

}  // namespace
}  // namespace mbmpo
