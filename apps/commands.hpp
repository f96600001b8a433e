// The subcommands of the `mbmpo` CLI. Each adds itself to the app and sets what it runs.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace mbmpo::app {

// The action of the chosen subcommand, run after parsing; returns the exit code.
using Action = std::function<int()>;

void add_info_command(CLI::App& app, Action& action);
void add_env_commands(CLI::App& app, Action& action);
void add_bench_command(CLI::App& app, Action& action);

}  // namespace mbmpo::app
