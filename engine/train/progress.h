// The live progress line of long work: step/total, loss, lr, throughput and ETA, rewritten in
// place on a terminal and printed every `every` steps otherwise (logs stay readable).
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace hone {

class ProgressLine {
 public:
  ProgressLine(int64_t total_steps, std::string unit = "tok", int64_t every = 10, std::FILE* out = stdout);

  // `work` is the number of units (tokens, images) processed in this step.
  void update(int64_t step, double loss, double lr, int64_t work, const std::string& extra = "");
  void finish();

 private:
  int64_t total_;
  std::string unit_;
  int64_t every_;
  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
  int64_t work_done_ = 0;
};

std::string format_duration(double seconds);

}  // namespace hone
