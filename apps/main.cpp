// mbmpo: Model-Based Meta-Policy Optimisation on CPU and CUDA.
// Exit codes: 0 success, 1 a failure of the program or machine, 2 bad input (flags, config, files).
#include <iostream>

#include "apps/commands.hpp"
#include "host/core/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"mbmpo: Model-Based Meta-Policy Optimization (MB-MPO) with CUDA kernels", "mbmpo"};
  app.require_subcommand(1);
  mbmpo::app::Action action;
  mbmpo::app::add_info_command(app, action);
  mbmpo::app::add_env_commands(app, action);
  mbmpo::app::add_bench_command(app, action);
  mbmpo::app::add_train_commands(app, action, argc, argv);

  // CLI11 would say only that an argument was not expected.
  if (argc > 1 && argv[1][0] != '-') {
    std::string commands;
    bool known = false;
    for (const CLI::App* command : app.get_subcommands([](CLI::App*) { return true; })) {
      known = known || command->check_name(argv[1]);
      commands += (commands.empty() ? "" : ", ") + command->get_name();
    }
    if (!known) {
      std::cerr << "mbmpo: error: unknown command '" << argv[1] << "' (the commands: " << commands
                << "; see mbmpo --help)\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::ParseError& e) {
    // CLI11's own exit codes are not 2; every bad flag is bad input here.
    if (e.get_exit_code() == 0) return app.exit(e);
    // Without a command, CLI11 says only that one is required, also when an unknown option came first.
    const std::vector<std::string> unparsed = app.remaining();
    if (app.get_subcommands().empty() && !unparsed.empty()) {
      std::cerr << "mbmpo: error: unknown argument '" << unparsed.front() << "' before the command (see mbmpo --help)\n";
      return 2;
    }
    std::cerr << "mbmpo: error: " << e.what() << " (see mbmpo --help)\n";
    return 2;
  }

  try {
    return action();
  } catch (const mbmpo::InputError& e) {
    std::cerr << "mbmpo: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "mbmpo: failed: " << e.what() << "\n";
    return 1;
  }
}
