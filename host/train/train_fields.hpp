// Every TrainConfig field once: its key, its member, its default, its help and its check. The CLI's flags and
// config.toml keys, the run's config.json, the checkpoints' metadata and validate() are all built
// from this table, so a new hyperparameter is one line here plus its member in TrainConfig.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "host/core/sizes_text.hpp"
#include "host/train/train_config.hpp"

namespace mbmpo {

using TrainMember = std::variant<std::string TrainConfig::*, int TrainConfig::*, std::uint64_t TrainConfig::*,
                                 double TrainConfig::*, bool TrainConfig::*, std::vector<int> TrainConfig::*>;
// A field's value, of its member's type.
using TrainValue = std::variant<std::string, int, std::uint64_t, double, bool, std::vector<int>>;

// The values a field accepts (for a list of sizes: each size): [low, high], either end open. Every
// numeric field has one that a real run can use, so that 1e30 or 2^31 - 1 is refused by name
// instead of training into NaN or running out of memory.
struct FieldRange {
  double low = -1e300, high = 1e300;
  bool low_open = false, high_open = false;
  bool contains(double value) const;
  std::string text() const;  // "in [1, 64]", "in (0, 1]"
};

struct TrainField {
  const char* key;  // snake_case: config.json and checkpoint key; the flag and TOML key use '-'
  TrainMember member;
  TrainValue default_value;  // what a default-constructed TrainConfig holds
  const char* help;
  FieldRange range = {};
  std::vector<std::string> choices = {};  // for a string field: the values it accepts
  bool checkpoint_shape = false;          // a checkpoint's contents depend on it: --resume must agree
};

const std::vector<TrainField>& train_fields();

// "model_hidden" -> "model-hidden".
std::string flag_name(const TrainField& field);


nlohmann::json config_to_json(const TrainConfig& config);
// Keys it does not know are ignored (files from older versions); values of the wrong type throw
// InputError naming the key.
TrainConfig config_from_json(const nlohmann::json& json);

// config.toml as `mbmpo train --config` reads it: a [train] section, one `flag-name=value` a line
// (apps/config_file.hpp reads it).
std::string config_to_toml(const TrainConfig& config);

// The range and choice of every field, naming the flag of the first bad one (InputError).
void check_field_ranges(const TrainConfig& config);

}  // namespace mbmpo
