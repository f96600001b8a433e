// `mbmpo train --config FILE`: the TOML file is read by toml++ (a real TOML parser's verdict:
// a syntax error, a duplicate key or an empty value is refused with its line), then each key of
// its [train] section is checked against the flag it sets before CLI11 applies it as that flag:
// an unknown key or section, a value of the wrong TOML type and an array where a single value
// belongs are refused naming the key. The values then pass the flags' own checks
// (apps/strict_value.hpp and the fields' ranges), so a key means exactly what its flag means.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <memory>
#include <string>

namespace mbmpo::app {

// The TOML type a key's value must have. A float key also takes an integer (3 is 3.0); a list of
// sizes is an array of integers, or the string "64,64" that earlier versions wrote.
enum class ConfigKind { integer, floating, boolean, string, sizes };

// Keys by their flag name (model-hidden); the snake_case form (model_hidden) names the same key.
using ConfigKeys = std::map<std::string, ConfigKind>;

// CLI11's reader of config files, replaced: `file` names the file in the errors.
std::shared_ptr<CLI::Config> toml_config_reader(const std::string& file, ConfigKeys keys);

// The task that `file` names ([train] env), or "" when it names none or cannot be read (the
// reader above reports why when it reads the file): `--preset cpu` needs the task first.
std::string config_file_env(const std::string& file);

}  // namespace mbmpo::app
