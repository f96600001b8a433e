// The `mbmpo` binary as a user runs it.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

CommandResult run_mbmpo(const std::string& arguments) {
  const std::string command = std::string("\"") + MBMPO_BINARY + "\" " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return {-1, "popen failed"};
  std::string output;
  std::array<char, 4096> buffer{};
  while (std::fgets(buffer.data(), buffer.size(), pipe)) output += buffer.data();
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST(Cli, InfoPrintsBuildAndDevice) {
  const CommandResult run = run_mbmpo("info");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("mujoco"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("cuda device"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("default device"), std::string::npos) << run.output;
}

TEST(Cli, InfoJsonIsMachineReadable) {
  const CommandResult run = run_mbmpo("info --json");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const nlohmann::json info = nlohmann::json::parse(run.output);
  EXPECT_EQ(info["mujoco_version"], "2.2.2");
  EXPECT_TRUE(info["cuda_device_usable"].is_boolean());
  if (info["cuda_device_usable"].get<bool>()) {
    EXPECT_TRUE(info.contains("cuda_device"));
    EXPECT_EQ(info["default_device"], "cuda");
  } else {
    EXPECT_FALSE(info["cuda_unusable_reason"].get<std::string>().empty());
    EXPECT_EQ(info["default_device"], "cpu");
  }
}

TEST(Cli, BadInputExitsTwoWithAMessage) {
  const CommandResult unknown_flag = run_mbmpo("info --bogus");
  EXPECT_EQ(unknown_flag.exit_code, 2) << unknown_flag.output;
  EXPECT_NE(unknown_flag.output.find("--bogus"), std::string::npos) << unknown_flag.output;

  const CommandResult unknown_command = run_mbmpo("frobnicate");
  EXPECT_EQ(unknown_command.exit_code, 2) << unknown_command.output;

  const CommandResult no_command = run_mbmpo("");
  EXPECT_EQ(no_command.exit_code, 2) << no_command.output;
}

TEST(Cli, HelpExitsZero) {
  const CommandResult run = run_mbmpo("--help");
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("info"), std::string::npos) << run.output;
}

}  // namespace
