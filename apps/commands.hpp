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
// `train` and `eval`; they look at argv before parsing (--preset and --resume change defaults).
void add_train_commands(CLI::App& app, Action& action, int argc, char** argv);

}  // namespace mbmpo::app
