// Runs the moegrad executable as a user does, for the command-line tests.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace moegrad::testing {

struct CliRun {
  int status;          // exit status; -1 when killed by a signal
  std::string output;  // stdout and stderr together
};

inline CliRun moegrad(const std::string& args) {
  const std::string cmd = "'" MOEGRAD_CLI_PATH "' " + args + " 2>&1 </dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr) << cmd;
  if (!pipe) return {-1, ""};
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  const int wstatus = pclose(pipe);
  return {WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1, out};
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace moegrad::testing
