#include "apps/config_file.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace mbmpo::app {
namespace {

const char* kind_name(ConfigKind kind) {
  switch (kind) {
    case ConfigKind::integer: return "an integer";
    case ConfigKind::floating: return "a number";
    case ConfigKind::boolean: return "true or false";
    case ConfigKind::string: return "a quoted string";
    case ConfigKind::sizes: return "an array of integers, e.g. [64, 64]";
  }
  return "?";
}

const char* toml_type_name(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

std::string number_text(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();  // "nan" and "inf" included: the flag's own check refuses them by name
}

class TomlConfigReader : public CLI::ConfigBase {
 public:
  TomlConfigReader(std::string file, ConfigKeys keys) : file_(std::move(file)), keys_(std::move(keys)) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    if (std::filesystem::is_directory(file_)) throw CLI::ConfigError(file_ + " is a directory, not a TOML file");
    std::ostringstream text;
    text << input.rdbuf();
    toml::table root;
    try {
      root = toml::parse(text.str(), file_);
    } catch (const toml::parse_error& e) {
      const auto& at = e.source().begin;
      throw CLI::ConfigError(file_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) +
                             ": not valid TOML: " + std::string(e.description()));
    }
    std::vector<CLI::ConfigItem> items;
    std::map<std::string, std::string> seen;  // flag name -> the spelling that gave it
    for (const auto& [section, node] : root) {
      const std::string name(section.str());
      if (name != "train" || !node.is_table()) {
        throw CLI::ConfigError(file_ + ": '" + name + "' is " + (node.is_table() ? "a section" : "a key") +
                               " outside [train]; the settings go in a [train] section, with the flags' names");
      }
      for (const auto& [key, value] : *node.as_table()) items.push_back(item(std::string(key.str()), value, seen));
    }
    return items;
  }

 private:
  CLI::ConfigItem item(const std::string& key, const toml::node& value,
                       std::map<std::string, std::string>& seen) const {
    std::string flag = key;
    std::replace(flag.begin(), flag.end(), '_', '-');  // model_hidden and model-hidden are one key
    const auto known = keys_.find(flag);
    const std::string where = file_ + ": [train] " + key;
    if (known == keys_.end()) {
      throw CLI::ConfigError(where + ": unknown key (the keys are the flags of mbmpo train --help, without --)");
    }
    const ConfigKind kind = known->second;
    auto wrong_type = [&] {
      return CLI::ConfigError(where + " is " + toml_type_name(value) + ", but it must be " + kind_name(kind));
    };
    CLI::ConfigItem item;
    item.parents = {"train"};
    item.name = flag;
    if (seen.count(flag)) throw CLI::ConfigError(where + ": the key is given twice (as " + seen[flag] + " too)");
    seen[flag] = key;
    switch (kind) {
      case ConfigKind::integer:
        if (!value.is_integer()) throw wrong_type();
        item.inputs = {std::to_string(value.as_integer()->get())};
        break;
      case ConfigKind::floating:
        if (value.is_integer()) item.inputs = {std::to_string(value.as_integer()->get())};
        else if (value.is_floating_point()) item.inputs = {number_text(value.as_floating_point()->get())};
        else throw wrong_type();
        break;
      case ConfigKind::boolean:
        if (!value.is_boolean()) throw wrong_type();
        item.inputs = {value.as_boolean()->get() ? "true" : "false"};
        break;
      case ConfigKind::string:
        if (!value.is_string()) throw wrong_type();
        item.inputs = {value.as_string()->get()};
        break;
      case ConfigKind::sizes:
        if (value.is_string()) {
          item.inputs = {value.as_string()->get()};  // "64,64", as earlier versions wrote it
        } else if (value.is_array()) {
          std::string sizes;
          for (const toml::node& size : *value.as_array()) {
            if (!size.is_integer()) {
              throw CLI::ConfigError(where + " holds " + toml_type_name(size) + ", but it must be " + kind_name(kind));
            }
            sizes += (sizes.empty() ? "" : ",") + std::to_string(size.as_integer()->get());
          }
          item.inputs = {sizes};  // [] is no layers, as "" is on the command line
        } else {
          throw wrong_type();
        }
        break;
    }
    return item;
  }

  std::string file_;
  ConfigKeys keys_;
};

}  // namespace

std::shared_ptr<CLI::Config> toml_config_reader(const std::string& file, ConfigKeys keys) {
  return std::make_shared<TomlConfigReader>(file, std::move(keys));
}

std::string config_file_env(const std::string& file) {
  if (file.empty()) return "";
  try {
    const toml::table table = toml::parse_file(file);
    return table["train"]["env"].value_or(std::string());
  } catch (const toml::parse_error&) {
    return "";
  }
}

}  // namespace mbmpo::app
