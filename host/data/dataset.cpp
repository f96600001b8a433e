#include "host/data/dataset.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "host/core/atomic_file.hpp"
#include "host/core/error.hpp"
#include "host/core/memory_budget.hpp"
#include "kernels/core/philox.cuh"

namespace mbmpo {

Dataset::Dataset(int obs_dim, int act_dim, std::size_t capacity)
    : obs_dim_(obs_dim), act_dim_(act_dim), capacity_(capacity) {
  MBMPO_CHECK_INPUT(obs_dim > 0 && act_dim > 0, "dataset: observation and action sizes (obs_dim, act_dim) must be positive, got ",
                    obs_dim, " and ", act_dim);
  MBMPO_CHECK_INPUT(capacity > 0, "dataset: capacity must be positive");
  const double row_bytes = sizeof(float) * (2.0 * obs_dim + act_dim + 1) + sizeof(std::uint8_t) +
                           sizeof(std::uint64_t) + sizeof(step_[0]);
  check_memory(Backend::cpu, double(capacity) * row_bytes,
               "a dataset of capacity " + std::to_string(capacity) + " transitions");
  obs_.resize(capacity * obs_dim);
  act_.resize(capacity * act_dim);
  next_obs_.resize(capacity * obs_dim);
  reward_.resize(capacity);
  done_.resize(capacity);
  episode_.resize(capacity);
  step_.resize(capacity);
  for (Moments* m : {&obs_moments_, &act_moments_, &delta_moments_}) {
    const int dim = m == &act_moments_ ? act_dim : obs_dim;
    m->mean.assign(dim, 0.0);
    m->m2.assign(dim, 0.0);
  }
}

void Dataset::add(const Episode& episode) {
  MBMPO_CHECK_INPUT(episode.obs_dim == obs_dim_ && episode.act_dim == act_dim_,
                    "dataset: episode with obs/act sizes ", episode.obs_dim, "/", episode.act_dim,
                    ", dataset holds ", obs_dim_, "/", act_dim_);
  const auto n = static_cast<std::size_t>(episode.length);
  MBMPO_CHECK(episode.obs.size() == n * obs_dim_ && episode.next_obs.size() == n * obs_dim_ &&
                  episode.act.size() == n * act_dim_ && episode.reward.size() == n &&
                  episode.done.size() == n,
              "dataset: episode ", episode.index, " has inconsistent array sizes");
  const auto all_finite = [](const std::vector<float>& values) {
    for (float v : values)
      if (!std::isfinite(v)) return false;
    return true;
  };
  MBMPO_CHECK_INPUT(all_finite(episode.obs) && all_finite(episode.next_obs) &&
                        all_finite(episode.act) && all_finite(episode.reward),
                    "dataset: episode ", episode.index,
                    " contains NaN or infinite values; it was not added");
  for (int t = 0; t < episode.length; ++t) push(episode, t);
}

void Dataset::push(const Episode& episode, int t) {
  if (size_ == capacity_) evict_oldest();
  const std::size_t s = slot(size_);
  std::memcpy(&obs_[s * obs_dim_], &episode.obs[t * obs_dim_], sizeof(float) * obs_dim_);
  std::memcpy(&act_[s * act_dim_], &episode.act[t * act_dim_], sizeof(float) * act_dim_);
  std::memcpy(&next_obs_[s * obs_dim_], &episode.next_obs[t * obs_dim_], sizeof(float) * obs_dim_);
  reward_[s] = episode.reward[t];
  done_[s] = episode.done[t];
  episode_[s] = episode.index;
  step_[s] = t;
  ++size_;
  ++total_added_;
  update_all_moments(s, true);
}

void Dataset::evict_oldest() {
  update_all_moments(slot(0), false);
  head_ = (head_ + 1) % capacity_;
  --size_;
}

void Dataset::update_moments(Moments& m, const float* x, int dim, bool add) {
  // Welford's update, and its exact reverse for a removed sample. `size_` already counts an added
  // sample and still counts a removed one.
  const double n = static_cast<double>(size_);
  for (int j = 0; j < dim; ++j) {
    const double value = x[j];
    if (add) {
      const double before = m.mean[j];
      m.mean[j] += (value - before) / n;
      m.m2[j] += (value - before) * (value - m.mean[j]);
    } else if (n <= 1) {
      m.mean[j] = 0, m.m2[j] = 0;
    } else {
      const double after = (n * m.mean[j] - value) / (n - 1);
      m.m2[j] -= (value - after) * (value - m.mean[j]);
      m.mean[j] = after;
    }
  }
}

void Dataset::update_all_moments(std::size_t s, bool add) {
  update_moments(obs_moments_, &obs_[s * obs_dim_], obs_dim_, add);
  update_moments(act_moments_, &act_[s * act_dim_], act_dim_, add);
  delta_scratch_.resize(static_cast<std::size_t>(obs_dim_));  // no allocation per transition
  for (int j = 0; j < obs_dim_; ++j)
    delta_scratch_[j] = next_obs_[s * obs_dim_ + j] - obs_[s * obs_dim_ + j];
  update_moments(delta_moments_, delta_scratch_.data(), obs_dim_, add);
}

DatasetStats Dataset::stats() const {
  const auto finish = [this](const Moments& m) {
    FeatureStats stats{m.mean, std::vector<double>(m.mean.size(), 0.0)};
    for (std::size_t j = 0; j < m.m2.size() && size_ > 0; ++j)
      stats.std[j] = std::sqrt(std::max(0.0, m.m2[j] / static_cast<double>(size_)));
    return stats;
  };
  return {finish(obs_moments_), finish(act_moments_), finish(delta_moments_)};
}

TrainValidationSplit Dataset::split(double validation_fraction, std::uint64_t seed,
                                    std::uint64_t model, std::uint64_t draw) const {
  MBMPO_CHECK_INPUT(validation_fraction >= 0 && validation_fraction < 1,
                    "validation fraction must be in [0, 1), got ", validation_fraction);
  std::vector<std::size_t> order(size_);
  for (std::size_t i = 0; i < size_; ++i) order[i] = i;
  // Fisher-Yates with Philox draws keyed by (seed ^ draw, model).
  const std::uint64_t key = seed ^ (0x73706c6974ull + (draw << 20));  // "split"
  for (std::size_t i = size_; i > 1; --i) {
    const double u = uniform_at(key, model, i);
    const auto j = std::min(static_cast<std::size_t>(u * static_cast<double>(i)), i - 1);
    std::swap(order[i - 1], order[j]);
  }
  std::size_t held_out = static_cast<std::size_t>(validation_fraction * static_cast<double>(size_));
  if (validation_fraction > 0 && held_out == 0 && size_ >= 2) held_out = 1;
  TrainValidationSplit result;
  result.validation.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(held_out));
  result.train.assign(order.begin() + static_cast<std::ptrdiff_t>(held_out), order.end());
  return result;
}

// ---- persistence -------------------------------------------------------------------------------

namespace {
constexpr char kMagic[8] = {'M', 'B', 'M', 'P', 'O', 'D', 'S', '1'};

std::uint64_t fnv1a(const char* data, std::size_t size) {
  std::uint64_t hash = 1469598103934665603ull;
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= static_cast<unsigned char>(data[i]);
    hash *= 1099511628211ull;
  }
  return hash;
}

template <class T>
void put(std::string& out, const T& value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}
template <class T>
void put_array(std::string& out, const T* values, std::size_t count) {
  out.append(reinterpret_cast<const char*>(values), sizeof(T) * count);
}

struct Reader {
  const std::string& data;
  const std::string& path;
  std::size_t offset = 0;
  void need(std::size_t bytes) const {
    if (offset + bytes > data.size())
      throw InputError("dataset file " + path + " is truncated (" + std::to_string(data.size()) +
                       " bytes)");
  }
  template <class T>
  T get() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, data.data() + offset, sizeof(T));
    offset += sizeof(T);
    return value;
  }
  template <class T>
  void get_array(T* values, std::size_t count) {
    need(sizeof(T) * count);
    std::memcpy(values, data.data() + offset, sizeof(T) * count);
    offset += sizeof(T) * count;
  }
};
}  // namespace

void Dataset::save(const std::string& path) const {
  std::string out;
  out.append(kMagic, sizeof(kMagic));
  put<std::int32_t>(out, obs_dim_);
  put<std::int32_t>(out, act_dim_);
  put<std::uint64_t>(out, capacity_);
  put<std::uint64_t>(out, size_);
  put<std::uint64_t>(out, total_added_);
  for (std::size_t i = 0; i < size_; ++i) {  // oldest first, so the ring starts at 0 on load
    put_array(out, obs(i), obs_dim_);
    put_array(out, act(i), act_dim_);
    put_array(out, next_obs(i), obs_dim_);
    put(out, reward(i));
    put(out, done_[slot(i)]);
    put(out, episode(i));
    put(out, step(i));
  }
  put<std::uint64_t>(out, fnv1a(out.data(), out.size()));
  write_file_atomically(path, out);
}

Dataset Dataset::load(const std::string& path) {
  const std::string data = read_file(path);
  if (data.size() < sizeof(kMagic) || std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0)
    throw InputError("dataset file " + path + " is not an mbmpo dataset (bad magic bytes)");
  if (data.size() < sizeof(kMagic) + 8)
    throw InputError("dataset file " + path + " is truncated");
  const std::size_t body = data.size() - sizeof(std::uint64_t);
  std::uint64_t stored_checksum;
  std::memcpy(&stored_checksum, data.data() + body, sizeof(stored_checksum));
  Reader reader{data, path, sizeof(kMagic)};
  const auto obs_dim = reader.get<std::int32_t>();
  const auto act_dim = reader.get<std::int32_t>();
  const auto capacity = reader.get<std::uint64_t>();
  const auto size = reader.get<std::uint64_t>();
  const auto total_added = reader.get<std::uint64_t>();
  if (obs_dim <= 0 || act_dim <= 0 || obs_dim > 100000 || act_dim > 100000 || capacity == 0 ||
      size > capacity || capacity > (1ull << 32))
    throw InputError("dataset file " + path + " has an invalid header (obs " + std::to_string(obs_dim) +
                     ", act " + std::to_string(act_dim) + ", size " + std::to_string(size) +
                     ", capacity " + std::to_string(capacity) + ")");
  const std::size_t row = sizeof(float) * (2 * obs_dim + act_dim + 1) + 1 + 8 + 4;
  if (reader.offset + size * row + sizeof(std::uint64_t) != data.size())
    throw InputError("dataset file " + path + " is truncated or has trailing bytes: " +
                     std::to_string(data.size()) + " bytes for " + std::to_string(size) +
                     " transitions");
  if (fnv1a(data.data(), body) != stored_checksum)
    throw InputError("dataset file " + path + " is corrupt (checksum mismatch)");

  Dataset dataset(obs_dim, act_dim, capacity);
  for (std::size_t s = 0; s < size; ++s) {
    reader.get_array(&dataset.obs_[s * obs_dim], obs_dim);
    reader.get_array(&dataset.act_[s * act_dim], act_dim);
    reader.get_array(&dataset.next_obs_[s * obs_dim], obs_dim);
    dataset.reward_[s] = reader.get<float>();
    dataset.done_[s] = reader.get<std::uint8_t>();
    dataset.episode_[s] = reader.get<std::uint64_t>();
    dataset.step_[s] = reader.get<std::int32_t>();
    // The checksum catches damage, not a file written with bad values: check them as add() does.
    const auto all_finite = [](const float* x, int n) { return std::all_of(x, x + n, [](float v) { return std::isfinite(v); }); };
    if (!all_finite(&dataset.obs_[s * obs_dim], obs_dim) || !all_finite(&dataset.act_[s * act_dim], act_dim) ||
        !all_finite(&dataset.next_obs_[s * obs_dim], obs_dim) || !std::isfinite(dataset.reward_[s]))
      throw InputError("dataset file " + path + ": transition " + std::to_string(s) + " holds a NaN or infinite value");
    if (dataset.done_[s] > 1 || dataset.step_[s] < 0)
      throw InputError("dataset file " + path + ": transition " + std::to_string(s) + " has done = " +
                       std::to_string(dataset.done_[s]) + " and step = " + std::to_string(dataset.step_[s]) +
                       " (expected 0 or 1, and >= 0)");
    ++dataset.size_;
    dataset.update_all_moments(s, true);
  }
  if (total_added < size)
    throw InputError("dataset file " + path + " says " + std::to_string(total_added) + " transitions were added but holds " +
                     std::to_string(size));
  dataset.total_added_ = total_added;
  return dataset;
}

}  // namespace mbmpo
