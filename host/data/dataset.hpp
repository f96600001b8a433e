// The real-transition dataset: a FIFO of fixed capacity (oldest transitions evicted first) with
// episode boundaries, running normalisation statistics, per-model train/validation splits, and
// atomic save/load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "host/data/episode.hpp"

namespace mbmpo {

struct FeatureStats {
  std::vector<double> mean, std;  // std = sqrt(population variance)
};

struct DatasetStats {
  FeatureStats obs, act, delta;  // delta = next_obs - obs
};

struct TrainValidationSplit {
  std::vector<std::size_t> train, validation;  // dataset indices (0 = oldest)
};

class Dataset {
 public:
  Dataset(int obs_dim, int act_dim, std::size_t capacity = 100000);

  int obs_dim() const { return obs_dim_; }
  int act_dim() const { return act_dim_; }
  std::size_t capacity() const { return capacity_; }
  std::size_t size() const { return size_; }
  std::uint64_t total_added() const { return total_added_; }

  // Appends every transition of the episode, evicting the oldest when full. Non-finite values are
  // an InputError (nothing is added).
  void add(const Episode& episode);

  // Transition i, 0 = oldest.
  const float* obs(std::size_t i) const { return &obs_[slot(i) * obs_dim_]; }
  const float* act(std::size_t i) const { return &act_[slot(i) * act_dim_]; }
  const float* next_obs(std::size_t i) const { return &next_obs_[slot(i) * obs_dim_]; }
  float reward(std::size_t i) const { return reward_[slot(i)]; }
  bool done(std::size_t i) const { return done_[slot(i)] != 0; }
  std::uint64_t episode(std::size_t i) const { return episode_[slot(i)]; }
  std::int32_t step(std::size_t i) const { return step_[slot(i)]; }

  // Mean and std of the current contents, kept up to date as transitions come and go.
  DatasetStats stats() const;

  // A fresh random split for one model: `validation_fraction` of the transitions (rounded down,
  // at least one when there are two or more) held out. Keyed by (seed, model, draw) so that each
  // model and each fit gets its own split.
  TrainValidationSplit split(double validation_fraction, std::uint64_t seed, std::uint64_t model,
                             std::uint64_t draw) const;

  // Binary file with a header, the contents and a checksum, written atomically. load() throws
  // InputError naming the problem for a missing, truncated, corrupt or mismatched file.
  void save(const std::string& path) const;
  static Dataset load(const std::string& path);

 private:
  std::size_t slot(std::size_t i) const { return (head_ + i) % capacity_; }
  void push(const Episode& episode, int t);
  void evict_oldest();
  struct Moments {
    std::vector<double> mean, m2;
  };
  void update_moments(Moments& moments, const float* x, int dim, bool add);
  void update_all_moments(std::size_t s, bool add);

  int obs_dim_, act_dim_;
  std::size_t capacity_;
  std::size_t head_ = 0, size_ = 0;
  std::uint64_t total_added_ = 0;
  std::vector<float> obs_, act_, next_obs_, reward_;
  std::vector<std::uint8_t> done_;
  std::vector<std::uint64_t> episode_;
  std::vector<std::int32_t> step_;
  // Welford moments, updated on add and reversed on eviction, in double.
  Moments obs_moments_, act_moments_, delta_moments_;
  std::vector<float> delta_scratch_;
};

}  // namespace mbmpo
