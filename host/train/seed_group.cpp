#include "host/train/seed_group.hpp"

#include "host/train/memory_estimate.hpp"
#include "host/train/run_directory.hpp"

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "host/core/atomic_file.hpp"
#include "host/core/error.hpp"
#include "host/train/train_fields.hpp"
#include "host/core/seed_limit.hpp"

namespace mbmpo {
namespace {

std::uint64_t parse_seed(const std::string& text, const std::string& list) {
  std::size_t used = 0;
  unsigned long long value = 0;
  try {
    if (!text.empty() && text[0] != '-' && text[0] != '+') value = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  MBMPO_CHECK_INPUT(!text.empty() && used == text.size(), "--seeds: expected seeds like 0-4 or 0,3,7, got '", list,
                    "'");
  return value;
}

}  // namespace

std::vector<std::uint64_t> parse_seed_list(const std::string& text) {
  std::vector<std::uint64_t> seeds;
  MBMPO_CHECK_INPUT(text.empty() || text.back() != ',', "--seeds: expected seeds like 0-4 or 0,3,7, got '", text, "'");
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, ',');) {
    const std::size_t dash = part.find('-', 1);
    if (dash == std::string::npos) {
      seeds.push_back(parse_seed(part, text));
      continue;
    }
    const std::uint64_t first = parse_seed(part.substr(0, dash), text);
    const std::uint64_t last = parse_seed(part.substr(dash + 1), text);
    MBMPO_CHECK_INPUT(first <= last, "--seeds: the range ", part, " runs backwards");
    MBMPO_CHECK_INPUT(last - first < 1024, "--seeds: the range ", part, " holds more than 1024 seeds");
    // Counted, not compared: a range ending at 2^64 - 1 would never end with `s <= last`.
    for (std::uint64_t i = 0; i <= last - first; ++i) seeds.push_back(first + i);
  }
  MBMPO_CHECK_INPUT(!seeds.empty(), "--seeds: no seeds given");
  std::set<std::uint64_t> seen;
  for (std::uint64_t s : seeds) MBMPO_CHECK_INPUT(seen.insert(s).second, "--seeds: seed ", s, " is listed twice");
  return seeds;
}

std::string seed_run_dir(const std::string& run_dir, std::uint64_t seed) {
  return (std::filesystem::path(run_dir) / ("seed-" + std::to_string(seed))).string();
}

void write_seed_group_configs(const std::string& run_dir, const TrainConfig& config,
                              const std::vector<std::uint64_t>& seeds, const std::string& seeds_text) {
  write_file_atomically((std::filesystem::path(run_dir) / "config.toml").string(),
                        config_to_toml(config) + "seeds=\"" + seeds_text + "\"\n");
  for (std::uint64_t seed : seeds) {
    TrainConfig seed_config = config;
    seed_config.seed = seed;
    write_file_atomically((std::filesystem::path(seed_run_dir(run_dir, seed)) / "config.toml").string(),
                          config_to_toml(seed_config));
  }
}

SeedGroup::SeedGroup(Backend backend, const TrainConfig& config, const std::vector<std::uint64_t>& seeds,
                     const std::string& run_dir, bool resume)
    : seeds_(seeds), iterations_(config.iterations), context_(std::make_unique<Context>(backend)) {
  MBMPO_CHECK_INPUT(!seeds.empty(), "--seeds: no seeds given");
  MBMPO_CHECK_INPUT(int(seeds.size()) <= kMaxSeedsTogether, "--seeds: at most ", kMaxSeedsTogether,
                    " seeds in one process, got ", seeds.size());
  validate(config);
  check_training_memory(config, int(seeds.size()), backend);
  check_run_dir_path(run_dir);
  // A group killed between its seeds' first checkpoints has seeds with nothing to resume: they
  // start over (their rows of the first iteration are redone), as long as one seed has a
  // checkpoint; with none, resuming fails as a single run's does.
  auto has_checkpoint = [&](std::uint64_t seed) { return holds_checkpoint(seed_run_dir(run_dir, seed)); };
  const bool any_checkpoint = std::any_of(seeds.begin(), seeds.end(), has_checkpoint);
  for (std::uint64_t seed : seeds) {
    TrainConfig seed_config = config;
    seed_config.seed = seed;
    const std::filesystem::path dir = seed_run_dir(run_dir, seed);
    bool resume_seed = resume;
    if (resume && any_checkpoint && !has_checkpoint(seed)) {
      for (const char* file : {"progress.jsonl", "progress.csv"}) std::filesystem::remove(dir / file);
      std::filesystem::remove_all(dir / "checkpoints");
      resume_seed = false;
    }
    trainers_.push_back(std::make_unique<Trainer>(*context_, seed_config, dir.string(), resume_seed));
  }
}

SeedGroup::~SeedGroup() = default;

int SeedGroup::iterations_done() const {
  int done = iterations_;
  for (const auto& trainer : trainers_) done = std::min(done, trainer->iterations_done());
  return done;
}

void SeedGroup::run(const std::function<void(const std::vector<nlohmann::ordered_json>& rows)>& on_round) {
  std::vector<Trainer*> all;
  for (const auto& trainer : trainers_) all.push_back(trainer.get());
  // Some of the seeds, together, up to `until` iterations; on_round gets rows in the group's order
  // (null for the seeds not in this run).
  auto run_some = [&](const std::vector<Trainer*>& some, int until) {
    Trainer::run_together(some, [&](const std::vector<nlohmann::ordered_json>& some_rows) {
      if (!on_round) return;
      std::vector<nlohmann::ordered_json> rows(all.size());
      for (std::size_t i = 0, j = 0; i < all.size(); ++i) {
        if (j < some.size() && all[i] == some[j]) rows[i] = some_rows[j++];
      }
      on_round(rows);
    }, {}, until);
  };
  // A group killed between two seeds' checkpoints resumes with seeds at different iterations: the
  // seeds furthest behind catch up together, a level at a time, until all stand level (the others'
  // rows of those rounds are already written).
  for (;;) {
    int behind = iterations_, ahead = 0;
    for (const Trainer* trainer : all) {
      behind = std::min(behind, trainer->iterations_done());
      ahead = std::max(ahead, trainer->iterations_done());
    }
    if (behind >= std::min(ahead, iterations_)) break;
    int next = ahead;  // the next level up from the seeds furthest behind
    std::vector<Trainer*> lagging;
    for (Trainer* trainer : all) {
      if (trainer->iterations_done() == behind) {
        lagging.push_back(trainer);
      } else {
        next = std::min(next, trainer->iterations_done());
      }
    }
    run_some(lagging, std::min(next, iterations_));
  }
  // Then all together up to the iterations asked for. Seeds already past them (a group resumed
  // with fewer --iterations) run nothing more but, like a run of their own, write their final policy.
  std::vector<Trainer*> level;
  for (Trainer* trainer : all) {
    if (trainer->iterations_done() < iterations_) {
      level.push_back(trainer);
    } else {
      trainer->run({}, {}, iterations_);
    }
  }
  if (!level.empty()) run_some(level, iterations_);
}

}  // namespace mbmpo
